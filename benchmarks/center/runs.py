"""The two runs of the center benchmark over one running simulator.

- `prometheus_run`: Prometheus (the shipped prometheus.yml as one shard, the project's rules)
  scrapes every node through the file_sd file; measured over the window: active series,
  samples/s ingested, CPU and memory of Prometheus and of the simulator, rule group durations,
  scrape durations, a node's scrape latency as a client sees it, which recording rules return
  data, and (when tests/dashboard_queries.py exists) every dashboard panel query's latency.
- `victoria_run`: vmagent scrapes the same nodes and remote-writes to VictoriaMetrics; measured:
  rows/s ingested, active series, CPU and memory of both, VictoriaMetrics' disk and bytes/row.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.center import panels
from benchmarks.center.measure import (
    MetricSample,
    UsageMeter,
    by_label,
    instant,
    scalar,
    scrape_latency,
    scrape_metrics,
    value,
    wait_for,
)
from benchmarks.center.processes import (
    RULE_DIR,
    Fleet,
    Service,
    disk_bytes,
    prometheus_config,
    start_prometheus,
    start_victoria_metrics,
    start_vmagent,
)

SIM_LINE = re.compile(
    r"(?:worker (\d+)/\d+: )?(\d+) nodes: cycle ([\d.]+) s \(busy ([\d.]+) s\), "
    r"max lag ([\d.]+) s, (\d+) behind; CPU ([\d.]+) s in (\d+) s"
)


@dataclass(frozen=True)
class Window:
    minutes: float
    sample_every_s: float = 30.0

    def run(
        self,
        meter: UsageMeter,
        during: Callable[[float], None] | None = None,
        each: Callable[[], None] | None = None,
    ) -> float:
        """Wait out the window, sampling RSS (and calling `each`) every sample_every_s;
        `during(elapsed)` runs once halfway."""
        began = time.monotonic()
        end = began + self.minutes * 60
        halfway_done = during is None
        while (now := time.monotonic()) < end:
            time.sleep(min(self.sample_every_s, end - now))
            meter.sample()
            if each is not None:
                each()
            if during is not None and not halfway_done and now - began >= self.minutes * 30:
                during(time.monotonic() - began)
                halfway_done = True
        return time.monotonic() - began


def seconds(interval: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    match = re.fullmatch(r"(\d+)(ms|s|m)", interval)
    if match is None:
        raise ValueError(f"not a duration like 15s: {interval!r}")
    return float(match.group(1)) * units[match.group(2)]


def record_names() -> list[str]:
    doc = yaml.safe_load((RULE_DIR / "suanli-recording.yml").read_text())
    return [r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r]


def rules_with_data(url: str) -> dict[str, int]:
    """Series per recording rule now (0: no data)."""
    return {name: len(instant(url, name)) for name in record_names()}


def simulator_cycles(log: Path, since: float) -> list[dict[str, float]]:
    """The simulator's per-minute lines logged after `since` (a time.time())."""
    rows = []
    for line in log.read_text(errors="replace").splitlines():
        match = SIM_LINE.search(line)
        stamp = line[:19]
        if match is None or time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) < since:
            continue
        worker, nodes, cycle, busy, lag, behind, cpu, wall = match.groups()
        rows.append(
            {"worker": float(worker or 1), "nodes": float(nodes), "cycle_s": float(cycle)}
            | {"busy_s": float(busy), "max_lag_s": float(lag), "behind": float(behind)}
            | {"cpu_share": float(cpu) / float(wall)}
        )
    return rows


class RuleDurations:
    """Each rule group's last evaluation time, read every sample: max and mean over the window
    (Prometheus keeps only the last one per group)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[str, list[float]] = {}

    def sample(self) -> None:
        found = by_label(
            scrape_metrics(self.url), "prometheus_rule_group_last_duration_seconds", "rule_group"
        )
        for group, seconds in found.items():
            self.seen.setdefault(group.rsplit(";", 1)[-1], []).append(seconds)

    def figures(self) -> dict[str, dict[str, float]]:
        return {
            "rule_groups_max_s": {g: max(v) for g, v in self.seen.items()},
            "rule_groups_mean_s": {g: sum(v) / len(v) for g, v in self.seen.items()},
        }


def _usage(found: dict[str, Any]) -> dict[str, Any]:
    return {name: asdict(usage) for name, usage in found.items()}


def _warm_prometheus(url: str, nodes: int, interval_s: float) -> float:
    took = wait_for(url, 'count(up{job="suanli"} == 1)', nodes, 120 + 3 * interval_s)
    took += wait_for(url, "count(instance:suanli_gpus:count)", 0.9 * nodes, 60 + 6 * interval_s)
    time.sleep(2 * interval_s)  # rates over two scrapes, GPM over two samples
    return took + 2 * interval_s


def prometheus_run(
    binary: str, fleet: Fleet, sim: Service, workdir: Path, window: Window, repeats: int, port: int
) -> dict[str, Any]:
    interval_s = seconds(fleet.interval)
    prom = start_prometheus(
        binary, prometheus_config(fleet.file_sd, fleet.interval, workdir), workdir, port
    )
    try:
        warm = _warm_prometheus(prom.url, fleet.nodes, interval_s)
        began_wall, first, t0 = time.time(), scrape_metrics(prom.url), time.monotonic()
        meter, rules = UsageMeter([sim, prom]), RuleDurations(prom.url)
        latency: dict[str, float] = {}
        window.run(
            meter, lambda _: latency.update(scrape_latency(fleet.base_port + 1)), rules.sample
        )
        last, t1 = scrape_metrics(prom.url), time.monotonic()
        usage = meter.finish()
        result = _prometheus_figures(prom.url, first, last, t1 - t0) | rules.figures()
        result |= {"warmup_s": warm, "usage": _usage(usage), "node_scrape_ms": latency}
        result["simulator_cycles"] = simulator_cycles(sim.log_path, began_wall)
        result["rules"] = rules_with_data(prom.url)
        result["panels"] = _panels(prom.url, interval_s, repeats)
        result["tsdb_disk_bytes"] = disk_bytes(workdir / "prometheus-data")
        return result
    finally:
        prom.stop()


def _prometheus_figures(
    url: str, first: list[MetricSample], last: list[MetricSample], wall: float
) -> dict[str, Any]:
    appended = "prometheus_tsdb_head_samples_appended_total"
    groups = by_label(last, "prometheus_rule_group_last_duration_seconds", "rule_group")
    return {
        "head_series": value(last, "prometheus_tsdb_head_series"),
        "samples_per_s": (value(last, appended) - value(first, appended)) / wall,
        "rule_groups_last_s": {g.rsplit(";", 1)[-1]: v for g, v in groups.items()},
        "rule_evaluations_missed": value(last, "prometheus_rule_group_iterations_missed_total"),
        "scrape_duration_p50_s": scalar(
            url, 'quantile(0.5, scrape_duration_seconds{job="suanli"})'
        ),
        "scrape_p99_s": scalar(url, 'quantile(0.99, scrape_duration_seconds{job="suanli"})'),
        "scrape_samples": scalar(url, 'sum(scrape_samples_scraped{job="suanli"})'),
        "targets_up": scalar(url, 'count(up{job="suanli"} == 1)'),
    }


def _panels(url: str, interval_s: float, repeats: int) -> dict[str, Any]:
    dq = panels.load()
    if dq is None:
        return {"skipped": f"{panels.QUERIES_MODULE} does not exist yet"}
    prepared = panels.prepare(dq, url, interval_s)
    rows = panels.latencies(url, prepared, repeats)
    return {"repeats": repeats, "queries": rows}


def storage_sum(samples: list[MetricSample], name: str) -> float:
    """The sum of `name` over VictoriaMetrics' data parts (type storage/...), not its index."""
    return sum(
        v for n, got, v in samples if n == name and got.get("type", "").startswith("storage/")
    )


def _warm_victoria(vm: Service, agent: Service, nodes: int, interval_s: float) -> float:
    began = time.monotonic()
    deadline = began + 120 + 3 * interval_s
    while time.monotonic() < deadline:
        up = value(scrape_metrics(agent.url), "vm_promscrape_targets", status="up")
        if up >= nodes and value(scrape_metrics(vm.url), "vm_rows_inserted_total") > 0:
            time.sleep(2 * interval_s)
            return time.monotonic() - began
        time.sleep(1.0)
    raise TimeoutError(f"vmagent did not scrape all {nodes} nodes:\n{agent.log_tail()}")


def victoria_run(
    binaries: tuple[str, str], fleet: Fleet, sim: Service, workdir: Path, window: Window,
    ports: tuple[int, int],
) -> dict[str, Any]:  # fmt: skip
    vm = start_victoria_metrics(binaries[0], workdir, ports[0])
    agent: Service | None = None
    try:
        agent = start_vmagent(
            binaries[1], fleet.file_sd, fleet.interval, f"{vm.url}/api/v1/write", workdir, ports[1]
        )
        warm = _warm_victoria(vm, agent, fleet.nodes, seconds(fleet.interval))
        first, t0 = scrape_metrics(vm.url), time.monotonic()
        meter = UsageMeter([sim, agent, vm])
        window.run(meter)
        last, t1 = scrape_metrics(vm.url), time.monotonic()
        usage = meter.finish()
        rows = "vm_rows_inserted_total"
        return {
            "warmup_s": warm,
            "rows_per_s": (value(last, rows) - value(first, rows)) / (t1 - t0),
            "active_series": value(last, "vm_cache_entries", type="storage/hour_metric_ids"),
            "rows_stored": storage_sum(last, "vm_rows"),
            "data_size_bytes": storage_sum(last, "vm_data_size_bytes"),
            "index_size_bytes": value(last, "vm_data_size_bytes")
            - storage_sum(last, "vm_data_size_bytes"),
            "disk_bytes": disk_bytes(workdir / "victoria-metrics-data"),
            "usage": _usage(usage),
        }
    finally:
        if agent is not None:
            agent.stop()
        vm.stop()
