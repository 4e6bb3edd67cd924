"""Risky NVML calls stay off the sampler's path until a child process has survived them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.app import Agent, build
from agent.config import Config, with_overrides
from agent.hw.nvml_functions import unvalidated
from agent.hw.nvml_probe import ANSWERED, NvmlProbe, outcomes
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import parse_scenario
from suanli_sim.host import simulated_parts

REPO = Path(__file__).resolve().parents[1]
BAR1_SEGFAULT = """
name: bar1-segfault
driver_version: "570.86.15"
gpus: {model: H100-SXM5-80GB, count: 2}
faults:
  - {kind: segfault, functions: [nvmlDeviceGetBAR1MemoryInfo]}
"""


def _agent(
    tmp_path: Path, scenario: str, state: str = "", c_abi: bool = True
) -> tuple[Agent, FakeNvml]:
    config = with_overrides(
        Config(), {"collectors.gpu.detail": True, "collectors.gpu.probe_state": state}
    )
    fake = FakeNvml(parse_scenario(scenario), clock=lambda: 30.0, sleep=lambda s: None)
    parts = simulated_parts(fake, tmp_path / "host", c_abi=c_abi)
    return build(config, parts=parts), fake


def _families(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{")]


@pytest.mark.parametrize("c_abi", [True, False], ids=["forked-child", "fleet-in-place"])
def test_a_call_that_kills_its_probe_child_is_disabled_and_reported(
    tmp_path: Path, c_abi: bool
) -> None:
    agent, fake = _agent(tmp_path, BAR1_SEGFAULT, c_abi=c_abi)
    try:
        body, _ = agent.renderer.render(agent.sampler.sample_once())
    finally:
        agent.sampler.stop()
    text = body.decode()
    disabled = _families(text, "suanli_nvml_function_disabled")
    assert disabled == [
        'suanli_nvml_function_disabled{function="nvmlDeviceGetBAR1MemoryInfo",reason="crashed"} 1.0'
    ]
    assert _families(text, "suanli_gpu_bar1_total_bytes") == []  # absent, not 0
    assert len(_families(text, "suanli_gpu_power_watts")) == 2  # the rest carries on
    # forked: never called in this process; in place: only the probe's call, never the sampler's
    assert fake.calls["nvmlDeviceGetBAR1MemoryInfo"] == (0 if c_abi else 1)


def test_probe_outcomes_are_kept_per_driver_version(tmp_path: Path) -> None:
    state = tmp_path / "probe.json"
    runs: list[list[str]] = []

    def runner(functions: list[str]) -> tuple[str, int]:
        runs.append(functions)
        lines = [f"calling {f}\n{ANSWERED} {f}" for f in functions if "BAR1" not in f]
        lines.append("calling nvmlDeviceGetBAR1MemoryInfo")
        return "\n".join(lines) + "\n", -11  # SIGSEGV in the BAR1 call

    driver = ["570.86.15"]
    probe = NvmlProbe(lambda: driver[0], runner, str(state))
    assert probe.allowed("nvmlDeviceGetPowerUsage")  # validated: never probed
    assert runs == []
    assert not probe.allowed("nvmlDeviceGetBAR1MemoryInfo")
    assert probe.allowed("nvmlDeviceGetMaxMigDeviceCount")
    assert len(runs) == 1 and set(runs[0]) == unvalidated()
    assert probe.disabled() == {"nvmlDeviceGetBAR1MemoryInfo": "crashed"}
    saved = json.loads(state.read_text())
    assert saved["570.86.15"]["nvmlDeviceGetBAR1MemoryInfo"] == "crashed"

    again = NvmlProbe(lambda: driver[0], runner, str(state))  # a restart, same driver
    assert not again.allowed("nvmlDeviceGetBAR1MemoryInfo")
    assert len(runs) == 1
    driver[0] = "575.51.03"  # a driver update: probed anew
    again.forget()
    again.allowed("nvmlDeviceGetPciInfo")
    assert len(runs) == 2


def test_a_child_that_dies_mid_way_is_followed_by_one_for_the_rest() -> None:
    runs: list[list[str]] = []

    def runner(functions: list[str]) -> tuple[str, int]:
        runs.append(functions)
        if functions[0] == "nvmlDeviceGetAttributes":
            return "calling nvmlDeviceGetAttributes\n", -6
        return "".join(f"calling {f}\n{ANSWERED} {f}\n" for f in functions), 0

    probe = NvmlProbe(lambda: "580.159.04", runner)
    assert not probe.allowed("nvmlDeviceGetAttributes")
    assert all(probe.allowed(f) for f in unvalidated() - {"nvmlDeviceGetAttributes"})
    assert len(runs) == 2 and "nvmlDeviceGetAttributes" not in runs[1]


def test_outcomes_read_the_childs_announcements() -> None:
    out = "calling a\nanswered a\ncalling b\n"
    assert outcomes(out, -11, ["a", "b", "c"]) == {"a": ANSWERED, "b": "crashed"}
    assert outcomes(out, 1, ["a", "b"]) == {"a": ANSWERED, "b": "exit status 1"}


def test_the_segfault_fault_really_kills_the_calling_process() -> None:
    code = (
        "from suanli_sim.cabi.nvml import CAbiNvml\n"
        "from suanli_sim.fake_nvml import FakeNvml\n"
        "from suanli_sim.fake_scenario import parse_scenario\n"
        f"nv = CAbiNvml(FakeNvml(parse_scenario({BAR1_SEGFAULT!r})))\n"
        "nv.nvmlInit()\n"
        "nv.nvmlDeviceGetBAR1MemoryInfo(nv.nvmlDeviceGetHandleByIndex(0))\n"
        "print('survived')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode < 0 and "survived" not in done.stdout  # killed by a signal


def test_without_a_driver_the_real_child_fails_and_nothing_risky_is_called() -> None:
    """On this machine there is no libnvidia-ml.so: the real child dies before its first call,
    so every unvalidated function stays off (never a guess that it is safe)."""
    probe = NvmlProbe(lambda: "none")
    assert not probe.allowed("nvmlDeviceGetBAR1MemoryInfo")
    assert set(probe.disabled()) == unvalidated()
    assert all(why.startswith("probe failed") for why in probe.disabled().values())
