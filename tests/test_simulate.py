"""The fleet simulator (`suanli-agent simulate`, suanli_sim/fleet): its plan, its nodes, its server.

- the plan: deterministic from the seed, every role in a small fleet, every health check, XID,
  scheduler and MIG in a 50-node center, file_sd as inventory-to-filesd.py writes it;
- the nodes, in process on a simulated clock: the real collectors without a thread per node;
- the command, as a process: every port serves valid exposition (promtool) whose node_info
  matches the file_sd file, within the series budget; HTTP/1.1 keep-alive, gzip, 404; a port
  in use or too few file descriptors is one line and exit 2; SIGTERM exits 0 and cleans up;
  two worker processes serve the same fleet.
"""

from __future__ import annotations

import gzip
import http.client
import json
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LOOPBACK, REPO_ROOT, agent_env, http_get
from test_deploy_prometheus import load_generator

from agent.config import Config
from agent.hw.pod_resources import KubeletError, PodResourcesClient
from suanli_sim.fake_kubelet import SOCKET
from suanli_sim.fleet.filesd import target_groups
from suanli_sim.fleet.fleet import plan_fleet
from suanli_sim.fleet.mix import DECK, assign_roles, parse_mix
from suanli_sim.fleet.node import DETAIL_ROLES, SimNode, build_node
from suanli_sim.fleet.scenarios import NodePlan
from suanli_sim.fleet.topology import layout, place

SERIES_BUDGET = 600  # tests/test_series_budget.py: an 8-GPU node by default
CHECKS = {
    "lost",
    "xid_critical",
    "uncorrectable_ecc",
    "row_remap_failure",
    "row_remap_pending",
    "pcie_link_degraded",
    "thermal",
    "nvlink_down",
    "recovery_action",
    "missing",
    "fabric",
}
SERIES = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def plans(nodes: int, seed: int = 1) -> list[NodePlan]:
    return plan_fleet(nodes, seed, layout(nodes, "zjk-sim"), 20000)


def parse(exposition: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            match = SERIES.match(line)
            assert match, line
            labels = dict(LABEL.findall(match.group(2) or ""))
            out.append((match.group(1), labels, float(match.group(3))))
    return out


# --- the plan ---------------------------------------------------------------------------------


def test_the_fleet_is_a_function_of_the_seed() -> None:
    first, again, other = plans(60, seed=7), plans(60, seed=7), plans(60, seed=8)
    assert [p.document for p in first] == [p.document for p in again]
    assert [p.document for p in first] != [p.document for p in other]
    # distinct nodes, distinct seeds: no two nodes share GPU identities
    assert len({p.scenario.seed for p in first}) == 60


def test_every_block_of_the_deck_holds_the_whole_deck() -> None:
    roles = assign_roles(100, seed=3)
    size = sum(DECK.values())
    for block in (roles[:size], roles[size:]):
        assert Counter(block) == Counter(DECK)


def test_a_small_fleet_still_has_faults_jobs_mig_and_idle_allocations() -> None:
    fleet = plans(12)
    roles = {p.role for p in fleet}
    assert {"train", "fault", "mig", "idle-alloc", "infer", "idle"} <= roles
    schedulers = {job.scheduler for p in fleet for job in p.scenario.jobs}
    assert {"slurm-v2", "kubernetes"} <= schedulers
    assert any(job.idle for p in fleet for job in p.scenario.jobs)
    assert any(p.mig_gpus for p in fleet) and any(p.scenario.faults for p in fleet)


def test_training_jobs_span_nodes_and_one_model() -> None:
    nodes_of: dict[str, list[NodePlan]] = {}
    for p in plans(200):
        if p.role == "train":
            nodes_of.setdefault(p.scenario.jobs[0].id, []).append(p)
    assert max(len(nodes) for nodes in nodes_of.values()) > 1
    for nodes in nodes_of.values():
        assert len({p.scenario.gpus[0].model for p in nodes}) == 1


def test_mix_overrides_and_refusals() -> None:
    assert parse_mix("fault=10,train=0")["fault"] == 10
    with pytest.raises(ValueError, match="unknown role"):
        parse_mix("gpu=3")
    with pytest.raises(ValueError, match="ROLE=COUNT"):
        parse_mix("fault")


def test_topology_and_file_sd_match_the_inventory_generator() -> None:
    fleet = layout(30, "c1", racks_per_hall=3)
    placements = place(30, fleet, 9000)
    assert (fleet.halls, placements[13].hall, placements[13].rack) == (3, "h02", "r001")
    assert placements[13].hostname == "gpu-h02-r001-02"
    rows = [
        {"host": "127.0.0.1", "port": str(p.port), "cluster": p.cluster, "hall": p.hall}
        | {"rack": p.rack, "_where": f"row {p.index}"}
        for p in placements
    ]
    assert target_groups(placements, "127.0.0.1") == load_generator().to_file_sd(rows)
    with pytest.raises(ValueError, match="fewer than --nodes"):
        layout(30, "c1", halls=1, racks_per_hall=2, nodes_per_rack=4)


# --- the nodes, in process ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def node_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="suanli-simulate-test-") as root:
        yield Path(root)


def sampled(fleet: list[NodePlan], root: Path, times: tuple[float, ...]) -> list[SimNode]:
    clock = Clock()
    nodes = [build_node(p, 1.0, Config(), root, clock) for p in fleet]
    for t in times:
        clock.t = t
        for node in nodes:
            node.sample()
    return nodes


def exposition(node: SimNode) -> str:
    found = node.metrics("", False)
    assert found is not None
    return found[0].decode()


def test_a_fifty_node_center_shows_every_check_xid_scheduler_and_mig(node_root: Path) -> None:
    threads = threading.active_count()
    nodes = sampled(plans(50), node_root, (0.0, 3.0, 31.0))
    assert threading.active_count() == threads, "a simulated node started a thread"
    seen: dict[str, set[str]] = {"check": set(), "xid": set(), "scheduler": set()}
    mig_instances = 0
    sxids: set[str] = set()
    reasons: set[str] = set()
    for node in nodes:
        for name, labels, value in parse(exposition(node)):
            if name == "suanli_gpu_health_check_failed" and value == 1:
                seen["check"].add(labels["check"])
            elif name == "suanli_gpu_xid_errors_total":
                seen["xid"].add(labels["xid"])
            elif name == "suanli_gpu_job_info":
                seen["scheduler"].add(labels["scheduler"])
            elif name == "suanli_mig_info":
                mig_instances += 1
            elif name == "suanli_nvswitch_sxid_errors_total":
                sxids.add(labels["sxid"])
            elif name == "suanli_gpu_unresponsive_seconds":
                reasons.add(labels["reason"])
        node.close()
    assert seen["check"] == CHECKS
    assert {"13", "31", "48", "63", "64", "74", "79", "94", "119"} <= seen["xid"]
    assert sxids == {"20034", "20009"}  # from each node's simulated kernel log
    assert {"lost", "missing"} <= reasons
    assert {"slurm", "kubernetes", "container"} <= seen["scheduler"]
    assert mig_instances >= 10


def test_a_mig_node_serves_its_kubelet_until_it_is_closed() -> None:
    """The fleet's MIG nodes serve their pods on a simulated kubelet (a gRPC server), stopped
    with the node: none is left running when the fleet stops."""
    plan = next(p for p in plans(12) if p.scenario.kubelet)
    with tempfile.TemporaryDirectory(prefix="k", dir="/tmp") as root:  # unix socket: 107 bytes
        node = build_node(plan, 1.0, Config(), Path(root), Clock(), kubelet=True)
        socket_path = str(Path(root) / plan.placement.hostname / SOCKET)
        try:
            allocatable = PodResourcesClient(socket_path).read().allocatable
            assert allocatable and any(device.startswith("MIG-") for device in allocatable)
        finally:
            node.close()
        with pytest.raises(KubeletError) as stopped:
            PodResourcesClient(socket_path).read()
        assert stopped.value.reason in ("refused", "missing")


def test_nodes_are_distinct_and_plausible(node_root: Path) -> None:
    fleet = plans(8)
    nodes = sampled(fleet, node_root, (0.0, 15.0))
    uuids: set[str] = set()
    for node, plan in zip(nodes, fleet, strict=True):
        series = parse(exposition(node))
        (info,) = [labels for name, labels, _ in series if name == "suanli_node_info"]
        where = plan.placement
        assert (info["hostname"], info["hall"], info["rack"]) == (
            where.hostname,
            where.hall,
            where.rack,
        )
        power = {labels["source"]: v for n, labels, v in series if n == "suanli_node_power_watts"}
        if plan.role != "fault":
            assert {"gpu", "cpu", "dram"} <= set(power)
            assert 200 < power["cpu"] < 900 and 20 < power["dram"] < 200
        mine = {labels["uuid"] for name, labels, _ in series if name == "suanli_gpu_up"}
        assert not mine & uuids
        uuids |= mine
        node.close()


# --- the command, as a process -----------------------------------------------------------------


def free_port_range(count: int) -> int:
    """A base port with `count` free ports after it (free a moment ago)."""
    for _ in range(50):
        base = random.randrange(20000, 60000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind((LOOPBACK, port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no free port range")


class Simulator:
    def __init__(self, tmp: Path, *args: str, nodes: int = 12) -> None:
        self.base = free_port_range(nodes)
        self.nodes = nodes
        self.file_sd = tmp / "sd" / "targets.json"
        self.out, self.err = tmp / "sim.out", tmp / "sim.err"
        command = [sys.executable, "-m", "agent", "simulate", "--nodes", str(nodes)]
        command += ["--base-port", str(self.base), "--file-sd", str(self.file_sd)]
        self.proc = subprocess.Popen(
            [*command, *args],
            cwd=tmp,
            env=agent_env(),
            stdout=self.out.open("wb"),
            stderr=self.err.open("wb"),
        )

    def wait_ready(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.out.read_text()
            if "ready in" in text:
                return text
            assert self.proc.poll() is None, self.err.read_text()
            time.sleep(0.1)
        raise AssertionError(f"not ready: {self.err.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)

    def close(self) -> None:
        """Stop it cleanly (its temporary folder goes with it), killing it if it hangs."""
        try:
            self.stop()
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Simulator]:
    sim = Simulator(tmp_path, "--interval", "1s", "--seed", "5")
    yield sim
    sim.close()


def test_every_port_serves_its_node_as_the_file_sd_says(
    simulator: Simulator, promtool: str
) -> None:
    line = simulator.wait_ready()
    assert re.search(r"12 nodes, \d+ GPUs .* on 127\.0\.0\.1:\d+-\d+; file_sd ", line), line
    time.sleep(2.5)  # two more samples: GPM and CPU power need two
    groups = json.loads(simulator.file_sd.read_text())
    targets = {t: g["labels"] for g in groups for t in g["targets"]}
    assert len(targets) == 12
    roles = {
        p.placement.port: p.role for p in plan_fleet(12, 5, layout(12, "zjk-sim"), simulator.base)
    }
    for target, topology in targets.items():
        port = int(target.rpartition(":")[2])
        body = http_get(port, "/metrics").text
        check = subprocess.run(
            [promtool, "check", "metrics"], input=body, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        series = parse(body)
        (info,) = [labels for name, labels, _ in series if name == "suanli_node_info"]
        assert {k: info[k] for k in ("cluster", "hall", "rack")} == topology
        gpus = sum(1 for name, _, _ in series if name == "suanli_gpu_up")
        migs = sum(1 for name, _, _ in series if name == "suanli_mig_info")
        if gpus == 8 and not migs and roles[port] not in DETAIL_ROLES:
            assert len(series) <= SERIES_BUDGET, (target, roles[port], len(series))
        if roles[port] in DETAIL_ROLES:  # clock event reasons, per-process memory
            assert {"suanli_gpu_clock_event_active", "suanli_gpu_process_memory_used_bytes"} <= {
                name for name, _, _ in series
            }
        assert http_get(port, "/healthz").status == 200


def test_http_keep_alive_gzip_head_and_404(simulator: Simulator) -> None:
    simulator.wait_ready()
    conn = http.client.HTTPConnection(LOOPBACK, simulator.base, timeout=5)
    try:
        openmetrics = {"Accept": "application/openmetrics-text; version=1.0.0"}
        conn.request("GET", "/metrics", headers=openmetrics | {"Accept-Encoding": "gzip"})
        first = conn.getresponse()
        body = gzip.decompress(first.read()).decode()
        assert first.getheader("Content-Encoding") == "gzip" and body.endswith("# EOF\n")
        assert first.getheader("Content-Type", "").startswith("application/openmetrics-text")
        conn.request("HEAD", "/metrics")  # the same connection: keep-alive
        head = conn.getresponse()
        assert head.status == 200 and head.read() == b"" and int(head.getheader("Content-Length"))
        conn.request("GET", "/nothing")
        missing = conn.getresponse()
        assert missing.status == 404 and missing.read()
        conn.request("POST", "/metrics")
        assert conn.getresponse().status == 405
    finally:
        conn.close()
    assert simulator.stop() == 0
    assert "Traceback" not in simulator.err.read_text()


def test_sigterm_stops_cleanly_and_removes_the_fake_procfs(simulator: Simulator) -> None:
    simulator.wait_ready()
    found = re.search(r"fake procfs under (\S+)", simulator.err.read_text())
    assert found, simulator.err.read_text()
    root = Path(found.group(1))
    assert root.is_dir()
    started = time.monotonic()
    assert simulator.stop() == 0
    assert time.monotonic() - started < 10
    assert "stopped in" in simulator.err.read_text()
    assert not root.exists()
    with pytest.raises(OSError):
        http_get(simulator.base, "/metrics", timeout=1)


def test_two_worker_processes_serve_one_fleet(tmp_path: Path) -> None:
    sim = Simulator(tmp_path, "--interval", "1s", "--workers", "2", nodes=6)
    try:
        assert "2 processes" in sim.wait_ready()
        hosts = set()
        for port in range(sim.base, sim.base + 6):
            (info,) = [
                labels
                for name, labels, _ in parse(http_get(port, "/metrics").text)
                if name == "suanli_node_info"
            ]
            hosts.add(info["hostname"])
        assert len(hosts) == 6
        assert sim.stop() == 0
    finally:
        sim.close()


def run_cli(*args: str, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """The command's result; `limit`: its RLIMIT_NOFILE. Only then is Python code run in the
    forked child before exec (preexec_fn), which is unsafe while this process runs threads."""

    def lower_limit() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "agent", "simulate", *args],
        cwd=REPO_ROOT,
        env=agent_env(),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lower_limit if limit is not None else None,
    )


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    base = free_port_range(4)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind((LOOPBACK, base + 2))
        taken.listen()
        result = run_cli("--nodes", "4", "--base-port", str(base), "--file-sd", str(tmp_path / "t"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"suanli-agent simulate: cannot listen on 127.0.0.1:{base + 2}: Address already in use"
    ]
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--nodes", "5", "--mix", "gpus=2"), '--mix: unknown role "gpus"'),
        (("--nodes", "10", "--base-port", "65530"), "ports 65530-65539 do not fit"),
        (("--nodes", "9", "--halls", "1", "--racks-per-hall", "2"), "fewer than --nodes 9"),
        (("--nodes", "5", "--interval=-1s"), "--interval: must be a positive duration"),
        (("--nodes", "5", "--workers", "many"), "--workers"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: tuple[str, ...], says: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("suanli-agent simulate: ") and says in line, line


def test_too_few_file_descriptors_is_one_line_and_exit_2() -> None:
    result = run_cli("--nodes", "1000", limit=512)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "need about 2256 file descriptors" in line and "hard limit is 512" in line
