"""The agent against Prometheus's own tools: `promtool check metrics`, a real Prometheus scraping.

These need the Debian package `prometheus` (promtool and the server); they skip without it unless
SUANLI_REQUIRE_PROMETHEUS=1 (CI), where they fail instead.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import AgentProcess, PrometheusServer

RunAgent = Callable[..., "subprocess.CompletedProcess[str]"]
StartAgent = Callable[..., "AgentProcess"]
StartPrometheus = Callable[..., "PrometheusServer"]

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "suanli_sim" / "scenarios"
SCENARIOS = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
DOCUMENTED_SCENARIOS = {
    "h100-8",
    "h100-64",
    "a100-mig",
    "mixed-faults",
    "h800-8",
    "h20-8",
    "l40s-4",
    "rtx4090-8",
    "idle-8",
    "no-nvml",
}
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version").exists()
# how long a test may wait for a fault a scenario injects at a simulated time (seconds since start)
FAULT_WAIT_LIMIT_S = 5.0


def promtool_problems(promtool: str, exposition: str) -> str:
    """What `promtool check metrics` says about `exposition`: "" when it is clean."""
    check = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    said = (check.stdout + check.stderr).strip()
    if check.returncode != 0 and not said:
        said = f"promtool exited {check.returncode}"
    return said


def detail_config(tmp_path: Path) -> Path:
    config = tmp_path / "detail.yaml"
    config.write_text("collectors:\n  gpu:\n    detail: true\n")
    return config


def value(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


# --- promtool --------------------------------------------------------------------------------


def test_every_documented_scenario_is_built_in() -> None:
    missing = DOCUMENTED_SCENARIOS - set(SCENARIOS)
    assert not missing, f"documented but not built in: {sorted(missing)}; built-in: {SCENARIOS}"


@pytest.mark.parametrize("detail", [False, True], ids=["default", "detail"])
def test_promtool_accepts_the_exposition_without_gpus(
    promtool: str, run_agent: RunAgent, tmp_path: Path, detail: bool
) -> None:
    args = ["--config", str(detail_config(tmp_path))] if detail else []

    result = run_agent("--once", *args)

    assert result.returncode == 0, result.stderr
    assert "suanli_cpu_seconds_total" in result.stdout
    assert promtool_problems(promtool, result.stdout) == ""


@pytest.mark.parametrize("detail", [False, True], ids=["default", "detail"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_promtool_accepts_the_exposition_of_every_scenario(
    promtool: str, run_agent: RunAgent, tmp_path: Path, scenario: str, detail: bool
) -> None:
    args = ["--config", str(detail_config(tmp_path))] if detail else []

    result = run_agent("--once", "--fake", scenario, *args)

    assert result.returncode == 0, result.stderr
    assert "suanli_nvml_up" in result.stdout
    assert promtool_problems(promtool, result.stdout) == ""


# --- a real Prometheus -----------------------------------------------------------------------


@pytest.mark.skipif(NVIDIA_DRIVER, reason="this host has an NVIDIA driver")
def test_prometheus_scrapes_an_agent_on_a_host_without_gpus(
    agent_process: StartAgent, prometheus_server: StartPrometheus
) -> None:
    agent = agent_process("--interval", "1s")
    prometheus = prometheus_server([agent.address])

    up = prometheus.wait_for("up", lambda r: bool(r) and value(r) == 1)

    assert up[0]["metric"]["instance"] == agent.address
    assert value(prometheus.query("suanli_nvml_up")) == 0
    modes = {r["metric"]["mode"] for r in prometheus.query("suanli_cpu_seconds_total")}
    assert {"user", "system", "idle"} <= modes
    assert value(prometheus.query('suanli_collector_success{collector="host"}')) == 1
    assert prometheus.query("suanli_gpu_up") == []


def _lost_gpus(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in scenario.get("faults") or [] if f.get("kind") == "gpu_lost"]


def _lost_gpu_scenario(tmp_path: Path) -> tuple[str, int]:
    """mixed-faults with its GPU loss brought forward to within FAULT_WAIT_LIMIT_S, if need be.

    Simulated time is seconds since the agent started, and the built-in loss comes later than a
    test should wait; the copy differs from the built-in in that one number only.
    """
    scenario = yaml.safe_load((SCENARIO_DIR / "mixed-faults.yaml").read_text())
    lost = _lost_gpus(scenario)
    assert len(lost) == 1, f"mixed-faults should lose exactly one GPU, has {lost}"
    fault = lost[0]
    gpu = fault.get("gpu", (fault.get("gpus") or [None])[0])
    assert isinstance(gpu, int), fault
    at = float(fault.get("at", 0))
    if at <= FAULT_WAIT_LIMIT_S:
        return "mixed-faults", gpu
    shift = at - 2.0
    fault["at"] = 2.0
    if fault.get("until") is not None:
        fault["until"] = float(fault["until"]) - shift
    path = tmp_path / "mixed-faults-soon.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return str(path), gpu


def test_prometheus_sees_every_gpu_of_two_agents_and_the_lost_one_down(
    agent_process: StartAgent, prometheus_server: StartPrometheus, tmp_path: Path
) -> None:
    faults_scenario, lost_gpu = _lost_gpu_scenario(tmp_path)
    healthy = agent_process("--fake", "h100-8", "--interval", "1s")
    faulty = agent_process("--fake", faults_scenario, "--interval", "1s")
    prometheus = prometheus_server([healthy.address, faulty.address])

    prometheus.wait_for("count(suanli_gpu_up)", lambda r: bool(r) and value(r) == 16)
    down = prometheus.wait_for(
        "suanli_gpu_up == 0", lambda r: bool(r), timeout=FAULT_WAIT_LIMIT_S + 15
    )

    assert [(r["metric"]["instance"], r["metric"]["gpu"]) for r in down] == [
        (faulty.address, str(lost_gpu))
    ]
    # the lost GPU keeps its up series but loses its value series (the metric contract)
    assert value(prometheus.query("count(suanli_gpu_up)")) == 16
    selector = f'instance="{faulty.address}",gpu="{lost_gpu}"'
    prometheus.wait_for(f"suanli_gpu_power_watts{{{selector}}}", lambda r: not r, timeout=5)
    up = {r["metric"]["instance"]: value([r]) for r in prometheus.query("up")}
    assert up == {healthy.address: 1.0, faulty.address: 1.0}


GOLDENS = sorted((Path(__file__).resolve().parent / "goldens").glob("*.prom"))


@pytest.mark.parametrize("golden", GOLDENS, ids=[g.stem for g in GOLDENS])
def test_promtool_accepts_every_golden_exposition(promtool: str, golden: Path) -> None:
    """Goldens are taken after a warm-up sample, so they hold GPM activity and MIG series too."""
    assert promtool_problems(promtool, golden.read_text()) == ""
