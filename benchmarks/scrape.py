"""HTTP scrapes of a running agent: latency loops over keep-alive connections, and the payload."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import math
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.agent_process import LOOPBACK, AgentProcess

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
GZIP = {"Accept-Encoding": "gzip"}
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Latency:
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    per_second: float


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (fraction in 0..1)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def summarize(latencies: list[float], wall: float) -> Latency:
    ms = [value * 1000 for value in latencies]
    return Latency(
        requests=len(ms),
        p50_ms=statistics.median(ms),
        p99_ms=percentile(ms, 0.99),
        max_ms=max(ms),
        per_second=len(ms) / wall,
    )


class Scraper:
    """One keep-alive connection to an agent's /metrics."""

    def __init__(self, port: int, headers: Mapping[str, str] | None = None) -> None:
        self._connection = http.client.HTTPConnection(LOOPBACK, port, timeout=TIMEOUT_S)
        self._headers = dict(headers or {})

    def get(self, path: str = "/metrics") -> tuple[bytes, dict[str, str]]:
        self._connection.request("GET", path, headers=self._headers)
        response = self._connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status}: {body[:200]!r}")
        return body, {name.lower(): value for name, value in response.getheaders()}

    def timed(self, count: int) -> list[float]:
        """`count` sequential GETs; the latency of each in seconds."""
        out = []
        for _ in range(count):
            start = time.perf_counter()
            self.get()
            out.append(time.perf_counter() - start)
        return out

    def close(self) -> None:
        self._connection.close()


def sequential(port: int, count: int, headers: Mapping[str, str] | None = None) -> Latency:
    scraper = Scraper(port, headers)
    try:
        scraper.get()  # open the connection outside the measurement
        start = time.perf_counter()
        latencies = scraper.timed(count)
        return summarize(latencies, time.perf_counter() - start)
    finally:
        scraper.close()


def concurrent(port: int, count: int, clients: int) -> Latency:
    """`clients` threads, one keep-alive connection each, `count` GETs in all."""
    scrapers = [Scraper(port) for _ in range(clients)]
    results: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients + 1)

    def work(slot: int) -> None:
        try:
            scrapers[slot].get()
            barrier.wait()
            results[slot] = scrapers[slot].timed(count // clients)
        except BaseException as err:
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    try:
        for thread in threads:
            thread.start()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(TIMEOUT_S)
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
    finally:
        for scraper in scrapers:
            scraper.close()
    if errors:
        raise RuntimeError(f"concurrent scrape failed: {errors[0]!r}")
    return summarize([value for slot in results for value in slot], wall)


@dataclass(frozen=True)
class Payload:
    plain_bytes: int
    gzip_bytes: int
    series: int
    families: int


def series_count(text: str) -> tuple[int, int]:
    """(series, families) of Prometheus text: non-comment lines, and `# TYPE` lines."""
    lines = [line for line in text.splitlines() if line.strip()]
    series = sum(1 for line in lines if not line.startswith("#"))
    families = sum(1 for line in lines if line.startswith("# TYPE "))
    return series, families


def payload(port: int) -> Payload:
    """Size of one plain and one gzip scrape of the same snapshot, and its series."""
    plain_scraper, gzip_scraper = Scraper(port), Scraper(port, GZIP)
    try:
        plain, _ = plain_scraper.get()
        packed, headers = gzip_scraper.get()
    finally:
        plain_scraper.close()
        gzip_scraper.close()
    if headers.get("content-encoding") != "gzip":
        raise RuntimeError("the agent ignored Accept-Encoding: gzip")
    series, families = series_count(plain.decode())
    gzip.decompress(packed)  # a valid gzip stream, or this raises
    return Payload(len(plain), len(packed), series, families)


@dataclass(frozen=True)
class Soak:
    seconds: float
    scrapes: int
    rss_start_mib: float  # after the agent's first answer to a Prometheus-format scrape
    rss_minute_mib: float  # one minute into the soak (its middle, for a shorter soak)
    rss_mid_mib: float
    rss_end_mib: float
    rss_max_mib: float
    cpu_percent: float


WARM_UP_S = 60.0


def soak(agent: AgentProcess, seconds: float) -> Soak:
    """Scrape once a second as Prometheus would (OpenMetrics, gzip) for `seconds`, watching RSS.

    The start RSS is taken after the first scrape in that format: the render cache of a format
    is allocated on its first request and belongs to the agent's steady state, not to drift.
    """
    scraper = Scraper(agent.port, {"Accept": PROMETHEUS_ACCEPT, **GZIP})
    scraper.get()
    rss = [(0.0, agent.rss_mib())]
    cpu_start, wall_start = agent.cpu_seconds(), time.monotonic()
    deadline = wall_start + seconds
    scrapes = 1
    try:
        while (now := time.monotonic()) < deadline:
            scraper.get()
            scrapes += 1
            rss.append((now - wall_start, agent.rss_mib()))
            time.sleep(max(0.0, min(1.0 - (time.monotonic() - now), deadline - time.monotonic())))
    finally:
        scraper.close()
    cpu = agent.cpu_seconds() - cpu_start
    wall = time.monotonic() - wall_start
    rss.append((wall, agent.rss_mib()))
    minute = min(WARM_UP_S, wall / 2)
    return Soak(
        seconds=wall,
        scrapes=scrapes,
        rss_start_mib=rss[0][1],
        rss_minute_mib=next(value for at, value in rss if at >= minute),
        rss_mid_mib=rss[len(rss) // 2][1],
        rss_end_mib=rss[-1][1],
        rss_max_mib=max(value for _, value in rss),
        cpu_percent=100 * cpu / wall,
    )


def soak_all(scenarios: Sequence[str], seconds: float) -> dict[str, Soak]:
    """One agent process per scenario, all soaked at once (each idles at a few % of a core)."""
    with contextlib.ExitStack() as stack:
        agents = {name: stack.enter_context(AgentProcess(name)) for name in scenarios}
        done: dict[str, Soak] = {}
        errors: list[BaseException] = []

        def work(name: str) -> None:
            try:
                done[name] = soak(agents[name], seconds)
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in scenarios]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise RuntimeError(f"soak failed: {errors[0]!r}")
    return {name: done[name] for name in scenarios}
