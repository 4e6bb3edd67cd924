"""deploy/prometheus: config, rules and file_sd generator, checked with Prometheus's own tools.

- `promtool check config` / `check rules` on the shipped files, and `promtool test rules` on
  tests/rules/*.test.yml, which must cover every recording rule and every alert (firing and not);
- inventory-to-filesd.py on good and bad inventories;
- hashmod sharding: two real Prometheus shards split the targets between them, none twice;
- a real Prometheus, configured from the shipped prometheus.yml and rule files, scraping real
  agents (`--fake h100-8`, `--fake mixed-faults`): every recording rule returns data;
- the same Prometheus remote-writing to Debian's victoria-metrics: the series arrive.

Prometheus tests skip without the Debian package `prometheus`, the VictoriaMetrics test without
`victoria-metrics`, unless SUANLI_REQUIRE_PROMETHEUS=1 (CI), where they fail instead.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from conftest import (
    LOOPBACK,
    PrometheusServer,
    http_get,
    launch_prometheus,
    pick_free_port,
    prometheus_required,
)

if TYPE_CHECKING:
    from conftest import AgentProcess

StartAgent = Callable[..., "AgentProcess"]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY = REPO_ROOT / "deploy" / "prometheus"
CONFIG = DEPLOY / "prometheus.yml"
RULE_FILES = sorted((DEPLOY / "rules").glob("*.yml"))
RECORDING = DEPLOY / "rules" / "suanli-recording.yml"
ALERTS = DEPLOY / "rules" / "suanli-alerts.yml"
UNIT_TESTS = sorted((REPO_ROOT / "tests" / "rules").glob("*.test.yml"))
GENERATOR = DEPLOY / "inventory-to-filesd.py"
EXAMPLE_INVENTORY = DEPLOY / "inventory.example.csv"
RULES_DEADLINE_S = 20.0  # real Prometheus: time for every recording rule to have data


def run_tool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=60, check=False
    )


def rules_of(path: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def record_names() -> list[str]:
    return [r["record"] for r in rules_of(RECORDING)]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("inventory_to_filesd", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# --- promtool on the shipped files ---------------------------------------------------------------


def test_promtool_accepts_the_shipped_config(promtool: str) -> None:
    check = run_tool(promtool, "check", "config", CONFIG)
    assert check.returncode == 0, check.stdout + check.stderr
    # it found and checked both rule files through rule_files
    assert "SUCCESS: 2 rule files found" in check.stdout, check.stdout


def test_promtool_accepts_the_rule_files(promtool: str) -> None:
    check = run_tool(promtool, "check", "rules", *RULE_FILES)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=[p.name for p in UNIT_TESTS])
def test_promtool_rule_unit_tests_pass(promtool: str, unit_test: Path) -> None:
    result = run_tool(promtool, "test", "rules", unit_test)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shipped_config_shards_with_hashmod_and_writes_remotely() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["global"]["scrape_interval"] == "15s"
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "suanli"  # the alerts select up{job="suanli"}
    assert job["file_sd_configs"][0]["files"]
    hashmod, keep = job["relabel_configs"]
    assert hashmod["action"] == "hashmod" and hashmod["target_label"] == "__tmp_hash"
    assert hashmod["source_labels"] == ["__address__"] and hashmod["modulus"] == 4
    assert keep == {"source_labels": ["__tmp_hash"], "regex": "0", "action": "keep"}
    assert config["global"]["external_labels"] == {"shard": "0"}
    assert config["remote_write"][0]["url"].startswith("http://127.0.0.1:8428/")
    assert sorted(config["rule_files"]) == sorted(f"rules/{p.name}" for p in RULE_FILES)


# --- the unit tests cover every rule -------------------------------------------------------------


def test_every_recording_rule_has_a_unit_test() -> None:
    tested: set[str] = set()
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("promql_expr_test", []):
                if case.get("exp_samples"):
                    tested.add(case["expr"].strip())
    missing = [name for name in record_names() if name not in tested]
    assert not missing, f"recording rules without an expected-output check: {missing}"


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    alerts = [r["alert"] for r in rules_of(ALERTS)]
    assert len(alerts) == len(set(alerts)) == 25
    assert not [a for a in alerts if a not in firing], "alerts never tested firing"
    assert not [a for a in alerts if a not in silent], "alerts never tested not firing"


def test_every_alert_says_what_to_do() -> None:
    for rule in rules_of(ALERTS):
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert len(annotations.get(key, "")) > 20, (rule["alert"], key)
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]


def test_recording_rules_use_the_level_metric_operation_convention() -> None:
    levels = {
        "instance",
        "cluster_hall_rack",
        "cluster_hall",
        "cluster",
        "cluster_scheduler_job_id",
        "cluster_namespace",  # tenants: delivered compute per namespace and per user
        "cluster_user",
        "gpu",  # per-GPU rows the dashboards' tables show (failing checks, idle allocated GPUs)
    }
    for name in record_names():
        level, metric, operation = name.split(":")
        assert level in levels and metric.startswith("suanli_") and operation, name
    # the job label of the agent is job_id: `job` in a rule may only be the scrape job
    assert "job=" not in RECORDING.read_text().replace("job_id", "")


# --- the file_sd generator -----------------------------------------------------------------------


def test_generator_groups_the_example_inventory_by_rack(tmp_path: Path) -> None:
    out = tmp_path / "sd" / "nodes.json"
    result = run_tool(sys.executable, GENERATOR, EXAMPLE_INVENTORY, "-o", out)
    assert result.returncode == 0, result.stderr
    groups = json.loads(out.read_text())
    with EXAMPLE_INVENTORY.open() as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    # every node once, under its own rack's labels, with 9445 for an empty port
    got = {t: g["labels"] for g in groups for t in g["targets"]}
    want = {
        f"{r['host']}:{r['port'] or 9445}": {k: r[k] for k in ("cluster", "hall", "rack")}
        for r in rows
    }
    assert got == want
    assert len(groups) == len({(r["cluster"], r["hall"], r["rack"]) for r in rows})
    assert not list(out.parent.glob(".nodes.json.*")), "temporary file left behind"


def test_generator_reads_yaml_inventories(tmp_path: Path) -> None:
    gen = load_generator()
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "- {host: a, port: 9100, cluster: c, hall: h, rack: r1}\n"
        "- {host: b, cluster: c, hall: h, rack: r1}\n"
    )
    groups = gen.to_file_sd(gen.read_inventory(inventory))
    assert groups == [
        {"targets": ["a:9100", "b:9445"], "labels": {"cluster": "c", "hall": "h", "rack": "r1"}}
    ]


def test_generator_reports_every_problem_and_writes_nothing(tmp_path: Path) -> None:
    inventory = tmp_path / "bad.csv"
    inventory.write_text(
        "host,port,cluster,hall,rack\n"
        "gpu-1,9445,c,h,r\n"
        "gpu-1,9445,c,h,r\n"  # duplicate
        "gpu 2,9445,c,h,r\n"  # bad host
        "gpu-3,70000,c,h,r\n"  # bad port
        "gpu-4,9445,c,hall 1,\n"  # bad hall, empty rack
    )
    out = tmp_path / "nodes.json"
    result = run_tool(sys.executable, GENERATOR, inventory, "-o", out)
    assert result.returncode == 2
    problems = result.stderr.strip().splitlines()
    assert len(problems) == 4, problems
    assert "row 2: gpu-1:9445 already listed at" in problems[0]
    assert "bad host 'gpu 2'" in problems[1] and "bad port '70000'" in problems[2]
    assert "hall='hall 1'" in problems[3] and "rack=''" in problems[3]
    assert not out.exists()


def test_generator_rejects_an_inventory_without_topology_columns(tmp_path: Path) -> None:
    inventory = tmp_path / "bad.csv"
    inventory.write_text("host,port\ngpu-1,9445\n")
    result = run_tool(sys.executable, GENERATOR, inventory)
    assert result.returncode == 2 and "header lacks cluster, hall, rack" in result.stderr


# --- real Prometheus from the shipped config -----------------------------------------------------


def write_inventory(path: Path, nodes: Mapping[str, tuple[str, str, str]]) -> Path:
    lines = ["host,port,cluster,hall,rack"]
    for address, (cluster, hall, rack) in nodes.items():
        host, _, port = address.rpartition(":")
        lines.append(f"{host},{port},{cluster},{hall},{rack}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_config(
    tmp_path: Path,
    targets_file: Path,
    *,
    shard: tuple[int, int] = (0, 1),
    remote_write_url: str | None = None,
) -> Path:
    """The shipped prometheus.yml for a test: 1s intervals, our file_sd file, shard K of N."""
    config = yaml.safe_load(CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["global"]["external_labels"] = {"shard": str(shard[0])}
    config["rule_files"] = [str(DEPLOY / f) for f in config["rule_files"]]
    job = config["scrape_configs"][0]
    job["file_sd_configs"] = [{"files": [str(targets_file)]}]
    hashmod, keep = job["relabel_configs"]
    hashmod["modulus"], keep["regex"] = shard[1], str(shard[0])
    if remote_write_url is None:
        del config["remote_write"]
    else:
        config["remote_write"][0]["url"] = remote_write_url
        config["remote_write"][0]["queue_config"].update(batch_send_deadline="1s", min_shards=1)
    path = tmp_path / f"prometheus-shard{shard[0]}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


test_config.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
def start_prometheus(
    prometheus_bin: str, tmp_path: Path
) -> Iterator[Callable[[Path], PrometheusServer]]:
    """Factory: Prometheus on a free loopback port with CONFIG; all stopped at the end."""
    started: list[PrometheusServer] = []

    def start(config: Path) -> PrometheusServer:
        server = launch_prometheus(prometheus_bin, config, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def test_hashmod_shards_split_the_targets_between_them(
    tmp_path: Path, start_prometheus: Callable[[Path], PrometheusServer]
) -> None:
    # nothing listens on these ports: relabelling decides the targets, scrapes may fail
    nodes = {f"127.0.0.1:{port}": ("c1", "h1", f"r{port % 3}") for port in range(1, 13)}
    generator = run_tool(
        sys.executable, GENERATOR, write_inventory(tmp_path / "inv.csv", nodes),
        "-o", tmp_path / "targets.json",
    )  # fmt: skip
    assert generator.returncode == 0, generator.stderr
    shards = [
        start_prometheus(test_config(tmp_path, tmp_path / "targets.json", shard=(k, 2)))
        for k in range(2)
    ]
    kept: list[set[str]] = []
    for server in shards:
        deadline = time.monotonic() + 10.0
        while not (targets := server.targets()) and time.monotonic() < deadline:
            time.sleep(0.2)
        kept.append({t["labels"]["instance"] for t in targets})
        # the topology from file_sd is on every target; the hash is not
        assert all(t["labels"]["rack"].startswith("r") for t in targets)
        assert not any("__tmp_hash" in t["labels"] for t in targets)
    assert kept[0] and kept[1], f"one shard got nothing: {kept}"
    assert kept[0].isdisjoint(kept[1]), "a node scraped by two shards"
    assert kept[0] | kept[1] == set(nodes), "a node scraped by no shard"


H100_TOPOLOGY = ("c1", "h1", "r1")
FAULTS_TOPOLOGY = ("c1", "h2", "r7")


@pytest.fixture
def two_agents(agent_process: StartAgent, tmp_path: Path) -> dict[str, tuple[str, str, str]]:
    config = tmp_path / "agent-rapl.yaml"  # RAPL from the fixture sysfs: CPU-power rollups need it
    sysfs = REPO_ROOT / "tests" / "fixtures" / "sys-hgx"
    config.write_text(f"collectors:\n  power:\n    sysfs: {sysfs}\n")
    h100 = agent_process("--fake", "h100-8", "--interval", "1s", "--config", str(config))
    faults = agent_process("--fake", "mixed-faults", "--interval", "1s")
    return {h100.address: H100_TOPOLOGY, faults.address: FAULTS_TOPOLOGY}


def prometheus_on_agents(
    tmp_path: Path,
    nodes: Mapping[str, tuple[str, str, str]],
    start: Callable[[Path], PrometheusServer],
    remote_write_url: str | None = None,
) -> PrometheusServer:
    targets = tmp_path / "targets.json"
    generator = run_tool(
        sys.executable, GENERATOR, write_inventory(tmp_path / "inv.csv", nodes), "-o", targets
    )
    assert generator.returncode == 0, generator.stderr
    return start(test_config(tmp_path, targets, remote_write_url=remote_write_url))


def wait_for_every_recording_rule(prom: PrometheusServer) -> None:
    """Fails with Prometheus's log unless every recording rule has data within the deadline."""
    deadline = time.monotonic() + RULES_DEADLINE_S
    missing = record_names()
    while missing and time.monotonic() < deadline:
        missing = [name for name in missing if not prom.query(name)]
        if missing:
            time.sleep(0.5)
    log = prom.log_path.read_text(errors="replace")
    assert not missing, (
        f"recording rules without data after {RULES_DEADLINE_S:.0f}s: {missing}\n{log}"
    )


def one_series(prom: PrometheusServer, name: str, **labels: str) -> float:
    """The one series of `name` with `labels`; a rate needs two samples of its own
    counter, so a series may follow its rule's first data by an evaluation or two."""
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    until = time.monotonic() + 10.0
    result = prom.query(f"{name}{{{selector}}}")
    while len(result) != 1 and time.monotonic() < until:
        time.sleep(0.5)
        result = prom.query(f"{name}{{{selector}}}")
    assert len(result) == 1, (name, labels, result)
    return float(result[0]["value"][1])


def job_power_rate(prom: PrometheusServer, job_id: str) -> float:
    return one_series(
        prom,
        "cluster_scheduler_job_id:suanli_job_gpu_energy_joules:rate5m",
        cluster="c1",
        scheduler="slurm",
        job_id=job_id,
    )


def rule_errors(prom: PrometheusServer) -> list[tuple[str, str]]:
    groups = prom.api("/api/v1/rules")["groups"]
    return [(r["name"], r["lastError"]) for g in groups for r in g["rules"] if r.get("lastError")]


def test_every_recording_rule_has_data_from_real_agents(
    tmp_path: Path,
    two_agents: dict[str, tuple[str, str, str]],
    start_prometheus: Callable[[Path], PrometheusServer],
) -> None:
    prom = prometheus_on_agents(tmp_path, two_agents, start_prometheus)
    h100, faults = two_agents
    wait_for_every_recording_rule(prom)
    at = functools.partial(one_series, prom)
    # node level: both 8-GPU nodes, with their inventory topology
    for address, (_cluster, hall, rack) in two_agents.items():
        assert at("instance:suanli_gpus:count", instance=address, rack=rack, hall=hall) == 8
    # h100-8: GPU 7 is held by an idle Slurm job, the other 7 train; all healthy
    assert at("instance:suanli_gpu_allocated_idle:count", instance=h100) == 1
    assert at("instance:suanli_gpu_allocated:count", instance=h100) == 8
    assert at("instance:suanli_gpu_busy:count", instance=h100) == 7
    assert at("instance:suanli_gpu_idle:count", instance=h100) == 1
    # mixed-faults: GPU 2's PCIe link is degraded while it trains: unhealthy, not busy
    assert at("instance:suanli_gpu_unhealthy:count", instance=faults) >= 1
    states = sum(
        at(f"instance:suanli_gpu_{s}:count", instance=faults)
        for s in ("busy", "idle", "unhealthy", "lost")
    )
    assert states == 8, "GPU states must partition the node's GPUs"
    # rollups: hall h1 is the h100 node alone, the cluster is both nodes
    assert at("cluster_hall:suanli_gpus:count", cluster="c1", hall="h1") == 8
    assert at("cluster:suanli_gpus:count", cluster="c1") == 16
    # delivered FLOP/s: between 0 and the installed BF16 peak, which is 8 x 989.4 TFLOP/s
    peak = at("cluster_hall_rack:suanli_gpu_peak_flops_bf16:sum", rack="r1")
    assert peak == pytest.approx(8 * 989.4e12)
    assert 0 < at("cluster_hall_rack:suanli_gpu_delivered_flops_bf16:sum", rack="r1") < peak
    # per-job power: Slurm job 1320003 trains on 4 GPUs, 1320011 holds one idle GPU. (Absolute
    # values are low here: rate() over 5m divides by the window, which these new series do
    # not fill yet.)
    assert job_power_rate(prom, "1320003") > 10 * job_power_rate(prom, "1320011") > 0
    # the alerts load and evaluate: no rule evaluation errors
    errors = rule_errors(prom)
    assert not errors, errors


# --- remote_write into VictoriaMetrics -----------------------------------------------------------


def victoria_metrics_binary() -> str:
    path = shutil.which("victoria-metrics")
    if path is not None:
        return path
    reason = "`victoria-metrics` is not on PATH (Debian package `victoria-metrics` provides it)"
    if prometheus_required():
        pytest.fail(f"{reason}, and SUANLI_REQUIRE_PROMETHEUS is set", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[str]:
    """A single-node VictoriaMetrics on a free loopback port; yields its base URL."""
    binary = victoria_metrics_binary()
    port = pick_free_port()
    log_path = tmp_path / "victoria-metrics.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"-storageDataPath={tmp_path / 'vm-data'}",
                f"-httpListenAddr={LOOPBACK}:{port}",
                "-retentionPeriod=1d",
                # answer queries up to "now": the default hides the last 30s of samples
                "-search.latencyOffset=0s",
                "-loggerLevel=WARN",
            ],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20.0
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if http_get(port, "/health", timeout=2.0).status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            else:
                pytest.fail(f"victoria-metrics did not start:\n{log_path.read_text()}")
            yield f"http://{LOOPBACK}:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def vm_query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        payload = json.load(resp)
    assert payload["status"] == "success", payload
    result: list[dict[str, Any]] = payload["data"]["result"]
    return result


def test_remote_write_reaches_victoria_metrics(
    tmp_path: Path,
    agent_process: StartAgent,
    victoria_metrics: str,
    start_prometheus: Callable[[Path], PrometheusServer],
) -> None:
    agent = agent_process("--fake", "h100-8", "--interval", "1s")
    nodes = {agent.address: H100_TOPOLOGY}
    prom = prometheus_on_agents(
        tmp_path, nodes, start_prometheus, remote_write_url=f"{victoria_metrics}/api/v1/write"
    )
    prom.wait_for("count(suanli_gpu_up) == 8", timeout=10)
    # raw series with their target labels, and the rollups with the shard's external label
    queries = {
        'count(suanli_gpu_up{rack="r1",shard="0"})': 8.0,
        'cluster:suanli_gpus:count{cluster="c1",shard="0"}': 8.0,
        'instance:suanli_gpu_allocated_idle:count{rack="r1"}': 1.0,
    }
    got: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        got = {q: vm_query(victoria_metrics, q) for q in queries}
        if all(len(r) == 1 for r in got.values()):
            break
        time.sleep(0.5)
    for promql, want in queries.items():
        assert len(got[promql]) == 1, f"{promql} in VictoriaMetrics: {got[promql]}"
        assert float(got[promql][0]["value"][1]) == want, promql
