"""What the center benchmark reads: /metrics of Prometheus and VictoriaMetrics, the Prometheus
API, and a node's scrape latency as a client sees it."""

from __future__ import annotations

import gzip
import http.client
import json
import statistics
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.center.processes import LOOPBACK, Service, fetch

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
MetricSample = tuple[str, dict[str, str], float]


def scrape_metrics(url: str) -> list[MetricSample]:
    """Every sample of a /metrics endpoint as (name, labels, value)."""
    text = fetch(f"{url}/metrics").decode("utf-8", errors="replace")
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def value(samples: Iterable[MetricSample], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
    return sum(
        v
        for n, got, v in samples
        if n == name and all(got.get(k) == want for k, want in labels.items())
    )


def by_label(samples: Iterable[MetricSample], name: str, label: str) -> dict[str, float]:
    return {got.get(label, ""): v for n, got, v in samples if n == name}


def api(url: str, path: str, params: Mapping[str, str] | None = None) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    payload = json.loads(fetch(f"{url}{path}{query}"))
    if payload.get("status") != "success":
        raise RuntimeError(f"{path} {params}: {payload}")
    return payload["data"]


def instant(url: str, promql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api(url, "/api/v1/query", {"query": promql})["result"]
    return result


def scalar(url: str, promql: str) -> float:
    result = instant(url, promql)
    return float(result[0]["value"][1]) if result else 0.0


def wait_for(url: str, promql: str, want: float, timeout: float) -> float:
    """Poll `promql` (a scalar-valued query) until it reaches `want`; returns the seconds."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if scalar(url, promql) >= want:
                return time.monotonic() - began
        except (OSError, RuntimeError):
            pass
        time.sleep(1.0)
    raise TimeoutError(f"{promql} did not reach {want} within {timeout:.0f}s")


@dataclass(frozen=True)
class Usage:
    """A process's CPU share and resident memory over a window."""

    cpu_cores: float
    rss_bytes: int
    rss_peak_bytes: int


class UsageMeter:
    """CPU seconds at the start and end of a window; RSS sampled in between."""

    def __init__(self, services: Iterable[Service]) -> None:
        self.services = list(services)
        self.began = time.monotonic()
        self.cpu = {s.name: s.cpu_seconds() for s in self.services}
        self.peak = {s.name: 0 for s in self.services}

    def sample(self) -> None:
        for s in self.services:
            self.peak[s.name] = max(self.peak[s.name], s.rss_bytes())

    def finish(self) -> dict[str, Usage]:
        self.sample()
        wall = time.monotonic() - self.began
        return {
            s.name: Usage(
                (s.cpu_seconds() - self.cpu[s.name]) / wall, s.rss_bytes(), self.peak[s.name]
            )
            for s in self.services
        }


def scrape_latency(port: int, requests: int = 100, pause: float = 0.05) -> dict[str, float]:
    """p50/p99/max ms of `requests` scrapes of one node as Prometheus asks (OpenMetrics,
    gzip, keep-alive), and the body's size."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    took: list[float] = []
    size = 0
    headers = {"Accept": OPENMETRICS, "Accept-Encoding": "gzip"}
    try:
        for _ in range(requests):
            began = time.perf_counter()
            conn.request("GET", "/metrics", headers=headers)
            body = conn.getresponse().read()
            took.append((time.perf_counter() - began) * 1000)
            size = len(body)
            time.sleep(pause)
    finally:
        conn.close()
    return {**percentiles(took), "gzip_bytes": size, "plain_bytes": len(gzip.decompress(body))}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": statistics.median(ordered), "p99": p99, "max": ordered[-1]}
