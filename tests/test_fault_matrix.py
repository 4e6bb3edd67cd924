"""The fault matrix (docs/reliability.md): one test per fault, on a real agent process.

Each test writes a scenario for the fake NVML to tmp_path, runs `python -m agent --fake FILE
--interval 500ms` on 127.0.0.1 and asserts three things: the agent keeps serving (/metrics 200),
the fault shows in a metric, and the agent recovers without a restart. Simulated time is seconds
since the agent started. Covered elsewhere, not repeated here:

- RAPL unreadable: tests/test_power.py
- /proc entries vanishing under a GPU process: tests/test_jobs_accounting.py
- configuration deleted or corrupted before a reload: tests/test_reload.py
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tests.conftest import SCENARIO_DIR, http_get
from tests.scrapes import Series, scrape, value, wait_for

if TYPE_CHECKING:
    from conftest import AgentProcess

StartAgent = Callable[..., "AgentProcess"]

TWO_GPUS = "name: fault\nseed: 3\ngpus: {model: H100-SXM5-80GB, count: 2, workload: training}\n"


def start(agent_process: StartAgent, tmp_path: Path, faults: str) -> AgentProcess:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(TWO_GPUS + "faults:\n" + faults)
    return agent_process("--fake", str(scenario), "--interval", "500ms")


def no_traceback(agent: AgentProcess) -> None:
    assert agent.proc.poll() is None, "the agent is still running"
    assert "Traceback" not in agent.stderr()


def gpu_up(gpu: str, up: float) -> Callable[[Series], bool]:
    return lambda s: value(s, "suanli_gpu_up", gpu=gpu) == up


def test_nvml_absent_serves_cpu_metrics(agent_process: StartAgent, tmp_path: Path) -> None:
    agent = start(agent_process, tmp_path, "  - {kind: nvml_absent}\n")
    series = wait_for(agent, lambda s: value(s, "suanli_nvml_up") == 0.0, "nvml_up 0")
    assert value(series, "suanli_cpu_seconds_total") is not None
    # the two GPUs are still on the PCI bus: expected, not present, each down by its bus id
    assert value(series, "suanli_gpus", state="expected") == 2.0
    assert value(series, "suanli_gpus", state="present") == 0.0
    slots = {dict(k[1])["gpu"]: v for k, v in series.items() if k[0] == "suanli_gpu_up"}
    assert slots == {"0000:18:00.0": 0.0, "0000:2a:00.0": 0.0}
    reasons = {dict(k[1])["reason"] for k in series if k[0] == "suanli_gpu_unresponsive_seconds"}
    assert reasons == {"nvml_down"}
    assert value(series, "suanli_collector_success", collector="host") == 1.0
    assert agent.get("/healthz").status == 200, "a node without a driver is not unhealthy"
    no_traceback(agent)


def test_driver_appearing_after_start_is_picked_up(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    agent = start(agent_process, tmp_path, "  - {kind: nvml_absent, until: 3}\n")
    assert value(scrape(agent), "suanli_nvml_up") == 0.0
    series = wait_for(agent, lambda s: value(s, "suanli_nvml_up") == 1.0, "nvml_up 1", 10.0)
    wait_for(agent, gpu_up("1", 1.0), "both GPUs", 2.0)
    assert value(series, "suanli_cpu_seconds_total") is not None
    no_traceback(agent)


def test_a_gpu_lost_mid_run_comes_back(agent_process: StartAgent, tmp_path: Path) -> None:
    agent = start(agent_process, tmp_path, "  - {kind: gpu_lost, gpu: 1, at: 2, until: 5}\n")
    assert value(scrape(agent), "suanli_gpu_up", gpu="1") == 1.0
    lost = wait_for(agent, gpu_up("1", 0.0), "gpu 1 down")
    assert value(lost, "suanli_gpu_up", gpu="0") == 1.0, "the other GPU carries on"
    assert value(lost, "suanli_gpu_health_check_failed", gpu="1", check="lost") == 1.0
    back = wait_for(agent, gpu_up("1", 1.0), "gpu 1 back")
    assert value(back, "suanli_gpu_health_check_failed", gpu="1", check="lost") == 0.0
    no_traceback(agent)


def test_an_nvml_error_storm_is_counted_and_passes(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    agent = start(agent_process, tmp_path, "  - {kind: error_storm, at: 1, duration: 3}\n")
    wait_for(agent, gpu_up("0", 1.0), "gpu 0 up")
    storm = wait_for(
        agent,
        lambda s: value(s, "suanli_nvml_errors_total", error="Unknown") is not None,
        "Unknown errors counted",
    )
    assert value(storm, "suanli_cpu_seconds_total") is not None
    wait_for(agent, lambda s: value(s, "suanli_gpu_up", gpu="0") != 1.0, "gpu 0 down", 4.0)
    back = wait_for(agent, lambda s: gpu_up("0", 1.0)(s) and gpu_up("1", 1.0)(s), "recovery")
    assert value(back, "suanli_nvml_up") == 1.0
    no_traceback(agent)


def test_a_hanging_call_marks_the_gpus_hung_and_the_agent_serves_on(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    fault = "  - {kind: slow_call, functions: [nvmlDeviceGetPowerUsage], seconds: 3, "
    agent = start(agent_process, tmp_path, fault + "at: 1, duration: 1.5}\n")
    stuck = wait_for(agent, gpu_up("1", 0.0), "GPU 1 hung")
    assert value(stuck, "suanli_gpu_unresponsive_seconds", gpu="1", reason="hung") is not None
    assert value(stuck, "suanli_collector_success", collector="host") == 1.0
    assert value(stuck, "suanli_collector_success", collector="gpu") == 1.0
    assert value(stuck, "suanli_collector_success", collector="gpu/1") == 0.0
    assert http_get(agent.port, "/healthz", timeout=1.0).status == 200, "the agent itself is fine"
    recovered = wait_for(agent, gpu_up("1", 1.0), "recovery")
    assert value(recovered, "suanli_gpu_unresponsive_seconds") is None
    assert value(recovered, "suanli_collector_success", collector="gpu/1") is None
    no_traceback(agent)


def test_not_supported_everywhere_leaves_values_absent(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    agent = start(agent_process, tmp_path, '  - {kind: not_supported, functions: ["*"]}\n')
    series = wait_for(agent, gpu_up("1", 1.0), "the GPUs up")
    for name in VALUE_FAMILIES:
        assert value(series, name) is None, f"{name} is absent, not 0"
    assert value(series, "suanli_nvml_errors_total") is None, "NOT_SUPPORTED is not an error"
    no_traceback(agent)


VALUE_FAMILIES = ("suanli_gpu_power_watts", "suanli_gpu_temperature_celsius")
UNSUPPORTED = "[nvmlDeviceGetPowerUsage, nvmlDeviceGetTemperature, nvmlDeviceGetFieldValues]"


def test_not_supported_values_are_absent_not_zero(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    agent = start(
        agent_process, tmp_path, f"  - {{kind: not_supported, functions: {UNSUPPORTED}}}\n"
    )
    series = wait_for(agent, gpu_up("1", 1.0), "the GPUs up")
    for name in VALUE_FAMILIES:
        assert value(series, name) is None, f"{name} is absent, not 0"
    assert value(series, "suanli_gpu_memory_used_bytes", gpu="0") is not None
    assert value(series, "suanli_nvml_errors_total") is None, "NOT_SUPPORTED is not an error"
    assert value(series, "suanli_collector_success", collector="gpu") == 1.0
    no_traceback(agent)


def test_an_xid_storm_is_counted_exactly(agent_process: StartAgent, tmp_path: Path) -> None:
    builtin = (SCENARIO_DIR / "xid-storm.yaml").read_text()
    scenario = tmp_path / "xid-storm.yaml"  # the built-in storm, 4 s and 8 s sooner
    scenario.write_text(builtin.replace("at: 5,", "at: 1,").replace("at: 10,", "at: 2,"))
    agent = agent_process("--fake", str(scenario), "--interval", "500ms")
    done = wait_for(
        agent,
        lambda s: value(s, "suanli_gpu_xid_errors_total", gpu="5", xid="95") == 1.0,
        "XID 95 on GPU 5",
    )
    wait_for(
        agent,
        lambda s: value(s, "suanli_gpu_xid_errors_total", gpu="0", xid="13") == 1000.0,
        "all 1000 XID 13 on GPU 0",
        3.0,
    )
    # NVIDIA's XID catalogue: an uncontained ECC error (95) asks to reset the GPU
    assert value(done, "suanli_gpu_xid_errors_total", gpu="5", action="reset_gpu") == 1.0
    assert value(done, "suanli_gpu_health_check_failed", gpu="5", check="xid_critical") == 1.0
    assert value(done, "suanli_gpu_health_check_failed", gpu="0", check="xid_critical") == 0.0
    assert value(done, "suanli_gpu_up", gpu="0") == 1.0, "a storm does not take the GPU down"
    no_traceback(agent)
