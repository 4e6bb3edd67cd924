"""Every dashboard query returns data from a real Prometheus scraping a simulated center.

Eight `--fake` agents over two halls and four racks of cluster zjk-a, their topology given as
Prometheus target labels, scraped and rule-evaluated every second with the project's recording
rules and alerts:

    H1/R01  h100-8    four jobs, one GPU allocated but idle; detail families, per-process
                      memory, and RAPL + a platform meter from a copy of tests/fixtures/sys-hgx
            h800-8
    H1/R02  h20-8, h100-mig (MIG instances, jobs on them)
    H2/R03  center-faults (below: a lost, a hung and a missing GPU, XIDs, ECC, remaps, PCIe,
            heat, NVLink, NVSwitch fabric and SXids, an NVML error storm, InfiniBand ports down
            and flapping; a cgroup v1 Slurm job with a uid; detail on, and an NVML call that
            kills its caller, which the agent's probe child meets and turns off; a simulated
            kubelet), rtx4090-8
            (fans, no NVLink, no GPM)
    H2/R04  jobs-churn, idle-8

The dashboards' variables are resolved like Grafana's chain (every value selected); each panel
query then runs as Grafana would send it (range queries for graphs, instant ones for tables and
range totals) and must return at least one series. Skips without Prometheus, fails under
SUANLI_REQUIRE_PROMETHEUS=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import (
    LOOPBACK,
    AgentProcess,
    PrometheusServer,
    agent_env,
    http_get,
    launch_prometheus,
    pick_free_port,
)
from dashboard_queries import PanelQuery, load_dashboards, queries_of, resolve_variables, substitute

ROOT = Path(__file__).resolve().parents[1]
RULE_DIR = ROOT / "deploy" / "prometheus" / "rules"
RULES = [RULE_DIR / "suanli-recording.yml", RULE_DIR / "suanli-alerts.yml"]
SYS_FIXTURE = ROOT / "tests" / "fixtures" / "sys-hgx"
CLUSTER = "zjk-a"
RATE_INTERVAL, RANGE = "5s", "5m"  # Grafana's choices for a 1 s scrape and a 5-minute view
DATA_DEADLINE_S = 45.0
# A mixed-faults node whose faults all happen in the first seconds (mixed-faults' own take
# 45-150 s), with XID 13 bursts repeating so XID counters rise while Prometheus watches.
FAULTS_SCENARIO = (
    """
name: center-faults
description: mixed-faults with its faults in the first seconds, for the dashboards' live test
seed: 42
driver_version: "590.48.01"
cuda_driver_version: 13010
gpus:
  - {model: H100-SXM5-80GB, count: 4, workload: training}
  - {model: H800-SXM5-80GB, count: 4, workload: inference, ecc: true}
  - {model: H800-SXM5-80GB, count: 2, workload: inference, ecc: true}  # 8 hangs, 9 is missing
infiniband: {ports: 8, down: [5], flaky: [2]}
kubelet: true  # the llama pod's GPUs on a simulated kubelet: the allocation panels
jobs:
  - {id: "4824887", scheduler: slurm-v1, gpus: [0, 1, 2, 3], user: 1000}
  - {id: llama-70b, scheduler: kubernetes-v1, namespace: inference, pod: llama-70b-6c5d9,
     gpus: [4, 5, 6, 7], processes_per_gpu: 2, user: 0}
faults:
  - {kind: gpu_lost, gpu: 3, at: 2}
  - {kind: xid, gpu: 3, at: 2, code: 79}
  - {kind: error_storm, at: 1, duration: 4, functions: [nvmlDeviceGetPowerUsage]}
  - {kind: ecc, gpu: 1, at: 1, corrected: 12, uncorrected: 1}
  - {kind: xid, gpu: 1, at: 1, code: 48}
  - {kind: recovery_action, gpu: 1, at: 1, action: gpu_reset}
  - {kind: row_remap_pending, gpu: 5}
  - {kind: row_remap_failure, gpu: 4}
  - {kind: thermal, gpu: 6, hw: true}
  - {kind: pcie_degraded, gpu: 2, width: 8}
  - {kind: nvlink_down, gpu: 7, links: [0, 1]}
  - {kind: fabric_incomplete, gpu: 5, at: 1}
  - {kind: hang, gpu: 8, at: 2}
  - {kind: missing, gpu: 9}
  - {kind: segfault, functions: [nvmlDeviceGetCurrentClocksThrottleReasons]}
  - {kind: xid, gpu: 4, at: 1, code: 95}
  - {kind: sxid, at: 1, switch: 1, link: 48, code: 20034, fatal: true}
"""
    + "".join(f"  - {{kind: xid, gpu: 0, at: {t}, code: 13, count: 5}}\n" for t in range(1, 60, 4))
    + "".join(
        f"  - {{kind: sxid, at: {t}, switch: {t % 4}, link: {t % 64}, code: 20009}}\n"
        for t in range(2, 60, 4)
    )
)
FULL_NODE = {"gpu": {"detail": True}, "jobs": {"per_process": True}, "infiniband": {"detail": True}}
# scenario, hall, rack, extra collectors configuration (RAPL added where "power" is named)
NODES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("h100-8", "H1", "R01", {**FULL_NODE, "power": {}}),
    ("h800-8", "H1", "R01", {}),
    ("h20-8", "H1", "R02", {}),
    ("h100-mig", "H1", "R02", {}),
    ("center-faults", "H2", "R03", {"gpu": {"detail": True}}),  # detail: the probe runs
    ("rtx4090-8", "H2", "R03", {}),
    ("jobs-churn", "H2", "R04", {}),
    ("idle-8", "H2", "R04", {}),
]


class RaplTicker:
    """Advances the RAPL energy counters of a copied sysfs, so CPU power is not a flat 0."""

    def __init__(self, sysfs: Path, watts: float = 180.0, period: float = 0.5) -> None:
        self.files = sorted((sysfs / "class" / "powercap").glob("*/energy_uj"))
        self.step = int(watts * period * 1e6)
        self.period, self.stop = period, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.period):
            for path in self.files:
                limit = int((path.parent / "max_energy_range_uj").read_text())
                value = (int(path.read_text()) + self.step) % limit
                tmp = path.with_suffix(".tmp")
                tmp.write_text(f"{value}\n")
                os.replace(tmp, path)


def _agent_config(tmp: Path, name: str, hall: str, rack: str, extra: dict[str, Any]) -> Path:
    collectors = dict(extra)
    if "power" in collectors:
        sysfs = tmp / f"sys-{name}"
        shutil.copytree(SYS_FIXTURE, sysfs)
        collectors["power"] = {"sysfs": str(sysfs)}
    topology = {"cluster": CLUSTER, "hall": hall, "rack": rack}
    config = {"topology": topology, "collectors": collectors}
    path = tmp / f"agent-{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start_agent(tmp: Path, scenario: str, config: Path) -> AgentProcess:
    port = pick_free_port()
    err, out = ((tmp / f"{config.stem}.{s}").open("wb") for s in ("stderr", "stdout"))
    args = (
        "--fake",
        scenario,
        "--interval",
        "1s",
        "--config",
        str(config),
        "--listen-address",
        f"{LOOPBACK}:{port}",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", *args],
        cwd=tmp,
        env=agent_env(),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
    )
    return AgentProcess(proc, port, args, Path(err.name), Path(out.name), [err, out])


def _wait_serving(agents: list[AgentProcess], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for agent in agents:
        while True:
            try:
                http_get(agent.port, "/healthz", timeout=2.0)
                break
            except OSError:
                if agent.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"agent {agent.args} not serving:\n{agent.stderr()}")
                time.sleep(0.1)


def _prometheus_config(tmp: Path, agents: list[AgentProcess]) -> Path:
    groups = [
        {"targets": [agent.address], "labels": {"cluster": CLUSTER, "hall": hall, "rack": rack}}
        for agent, (_, hall, rack, _) in zip(agents, NODES, strict=True)
    ]
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in RULES],
        "scrape_configs": [{"job_name": "suanli", "static_configs": groups}],
    }
    path = tmp / "prometheus-center.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def center(
    prometheus_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    """Prometheus on the eight agents of the simulated center, with the rules loaded."""
    tmp = tmp_path_factory.mktemp("center")
    (tmp / "center-faults.yaml").write_text(FAULTS_SCENARIO)
    agents: list[AgentProcess] = []
    tickers: list[RaplTicker] = []
    server: PrometheusServer | None = None
    try:
        for name, hall, rack, extra in NODES:
            config = _agent_config(tmp, name, hall, rack, extra)
            scenario = str(tmp / f"{name}.yaml") if name == "center-faults" else name
            agents.append(_start_agent(tmp, scenario, config))
            if "power" in extra:
                tickers.append(RaplTicker(tmp / f"sys-{name}"))
                tickers[-1].thread.start()
        _wait_serving(agents)
        server = launch_prometheus(prometheus_bin, _prometheus_config(tmp, agents), tmp)
        yield server
    finally:
        if server is not None:
            server.close()
        for ticker in tickers:
            ticker.stop.set()
        for agent in agents:
            agent.close()


def _label_values(prom: PrometheusServer, selector: str, label: str) -> list[str]:
    values: list[str] = prom.api(f"/api/v1/label/{label}/values", {"match[]": selector})
    return values


def _has_data(prom: PrometheusServer, query: PanelQuery, promql: str) -> bool:
    if query.instant:
        return bool(prom.query(promql))
    now = time.time()
    params = {"query": promql, "start": str(now - 30), "end": str(now), "step": "2"}
    return bool(prom.api("/api/v1/query_range", params)["result"])


def _queries(prom: PrometheusServer) -> list[tuple[PanelQuery, str]]:
    """Every panel query of every dashboard, variables resolved against `prom`."""
    out = []
    for board in load_dashboards():
        variables = resolve_variables(board, lambda s, label: _label_values(prom, s, label))
        for q in queries_of(board):
            out.append((q, substitute(q.expr, variables, RATE_INTERVAL, RANGE)))
    return out


def test_the_variables_resolve_through_the_chain(center: PrometheusServer) -> None:
    center.wait_for("count(instance:suanli_gpus:count) == 8", timeout=30)
    center.wait_for(f'cluster:suanli_gpus:count{{cluster="{CLUSTER}"}}', timeout=30)
    for board in load_dashboards():
        seen: dict[str, list[str]] = {}

        def choose(name: str, values: list[str], seen: dict[str, list[str]] = seen) -> list[str]:
            seen[name] = values
            return values

        resolve_variables(board, lambda s, label: _label_values(center, s, label), choose)
        assert seen["cluster"] == [CLUSTER], board["title"]
        assert seen["hall"] == ["H1", "H2"] and seen["rack"] == ["R01", "R02", "R03", "R04"]
        assert len(seen["instance"]) == len(NODES)
        # NVML indexes (center-faults has 9 GPUs listed), and the PCI bus id of its GPU that
        # failed at boot, which NVML does not list
        assert [g for g in seen["gpu"] if ":" not in g] == [str(i) for i in range(9)]
        assert [g for g in seen["gpu"] if ":" in g] == ["0001:2a:00.0"]


def test_every_panel_query_returns_data(center: PrometheusServer) -> None:
    # the slowest rollups: rates need two samples of their counters, GPM two agent samples
    slowest = (
        "cluster_scheduler_job_id:suanli_gpu_sm_active_ratio:count",
        "cluster:suanli_cpu_power_watts:sum",
        'instance:suanli_gpu_xid_errors:rate5m{xid!=""}',
    )
    for ready in slowest:
        center.wait_for(ready, timeout=30)
    pending = _queries(center)
    deadline = time.monotonic() + DATA_DEADLINE_S
    while pending and time.monotonic() < deadline:
        pending = [(q, promql) for q, promql in pending if not _has_data(center, q, promql)]
        if pending:
            time.sleep(1.0)
    assert not pending, "panel queries without data:\n" + "\n".join(
        f"{q.name}: {promql}" for q, promql in pending
    )
    errors = [
        (rule["name"], rule["lastError"])
        for group in center.api("/api/v1/rules")["groups"]
        for rule in group["rules"]
        if rule.get("lastError")
    ]
    assert not errors, errors
