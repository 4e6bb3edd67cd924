"""A 50-node simulated center under a real Prometheus: every recording rule and every dashboard
panel query returns data.

`suanli-agent simulate --nodes 50` (sampling every 2 s) serves the nodes and writes the
file_sd file; Prometheus runs the shipped prometheus.yml as one shard (the project's recording
rules and alerts, every 2 s). The scaled-down, CI-sized form of `python -m benchmarks.center`
(docs/scale.md). Skips without Prometheus, fails under SUANLI_REQUIRE_PROMETHEUS=1.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_queries import PanelQuery, load_dashboards, queries_of, resolve_variables, substitute

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.center.measure import api, instant, scalar, wait_for
from benchmarks.center.processes import (
    Fleet,
    Service,
    prometheus_config,
    start_prometheus,
    start_simulator,
)
from benchmarks.center.runs import record_names

NODES, INTERVAL = 50, "2s"
RATE_INTERVAL, RANGE = "8s", "5m"  # Grafana: 4 x the scrape interval; a 5-minute view
DEADLINE_S = 60.0


def free_base_port(count: int) -> int:
    from test_simulate import free_port_range

    return free_port_range(count + 1)


@pytest.fixture(scope="module")
def center(
    prometheus_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, Service]]:
    tmp = tmp_path_factory.mktemp("center")
    base = free_base_port(NODES)
    fleet = Fleet(NODES, base + 1, INTERVAL, tmp / "targets.json")
    sim, _ = start_simulator(fleet, tmp, timeout=60)
    prom: Service | None = None
    try:
        prom = start_prometheus(
            prometheus_bin, prometheus_config(fleet.file_sd, INTERVAL, tmp), tmp, base
        )
        yield sim, prom
    finally:
        if prom is not None:
            prom.stop()
        assert sim.stop() == 0, sim.log_tail()


def _has_data(url: str, query: PanelQuery, promql: str) -> bool:
    if query.instant:
        return bool(instant(url, promql))
    now = time.time()
    params = {"query": promql, "start": str(now - 30), "end": str(now), "step": "2"}
    return bool(api(url, "/api/v1/query_range", params)["result"])


def _label_values(url: str) -> Any:
    def values(selector: str, label: str) -> list[str]:
        found: list[str] = api(url, f"/api/v1/label/{label}/values", {"match[]": selector})
        return found

    return values


def test_every_recording_rule_and_panel_query_has_data(center: tuple[Service, Service]) -> None:
    sim, prom = center
    began = time.monotonic()
    wait_for(prom.url, 'count(up{job="suanli"} == 1)', NODES, 30)
    missing = record_names()
    while missing and time.monotonic() - began < DEADLINE_S:
        missing = [name for name in missing if not instant(prom.url, name)]
        time.sleep(0.5 if missing else 0)
    assert not missing, f"recording rules without data: {missing}\n{prom.log_tail()}"
    pending = [
        (q, substitute(q.expr, variables, RATE_INTERVAL, RANGE))
        for board in load_dashboards()
        for variables in [resolve_variables(board, _label_values(prom.url))]
        for q in queries_of(board)
    ]
    while pending and time.monotonic() - began < DEADLINE_S:
        pending = [(q, e) for q, e in pending if not _has_data(prom.url, q, e)]
        time.sleep(1.0 if pending else 0)
    assert not pending, "panel queries without data:\n" + "\n".join(
        f"{q.name}: {promql}" for q, promql in pending
    )
    errors = [
        (rule["name"], rule["lastError"])
        for group in api(prom.url, "/api/v1/rules")["groups"]
        for rule in group["rules"]
        if rule.get("lastError")
    ]
    assert not errors, errors
    assert scalar(prom.url, "sum(instance:suanli_gpus:count)") > 7 * NODES
    assert "Traceback" not in sim.log_path.read_text()
