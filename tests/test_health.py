"""Health verdicts: each check flips on its own injected condition, and back when it clears."""

from __future__ import annotations

import pytest

from agent.collectors.health import CHECKS
from tests.gpu_helpers import Series, node


def checks(series: Series, gpu: str) -> dict[str, float]:
    return {
        labels[2]: value
        for (name, labels), value in series.items()
        if name == "suanli_gpu_health_check_failed" and labels[0] == gpu
    }


def healthy(series: Series, gpu: str) -> float:
    return next(
        v for (n, labels), v in series.items() if n == "suanli_gpu_healthy" and labels[0] == gpu
    )


def scenario(fault: str, model: str = "H100-SXM5-80GB") -> str:
    return f"""
name: health-{fault.split(",")[0].split(":")[1].strip()}
driver_version: "590.48.01"
cuda_driver_version: 13010
gpus: {{model: {model}, count: 2, workload: training}}
faults:
  - {{{fault}}}
"""


# (fault, check, time it fails, time it has cleared or None when it never clears)
CASES = [
    ("kind: gpu_lost, gpu: 1, at: 50, until: 150", "lost", 100.0, 200.0),
    ("kind: row_remap_pending, gpu: 1, at: 50, until: 150", "row_remap_pending", 100.0, 200.0),
    ("kind: row_remap_failure, gpu: 1, at: 50", "row_remap_failure", 100.0, None),
    (
        "kind: pcie_degraded, gpu: 1, at: 50, until: 150, width: 8",
        "pcie_link_degraded",
        100.0,
        200.0,
    ),
    ("kind: thermal, gpu: 1, at: 50, until: 150", "thermal", 100.0, 200.0),
    ("kind: nvlink_down, gpu: 1, at: 50, until: 150, links: [3]", "nvlink_down", 100.0, 200.0),
    (
        "kind: recovery_action, gpu: 1, at: 50, until: 150, action: gpu_reset",
        "recovery_action",
        100.0,
        200.0,
    ),
]


@pytest.mark.parametrize(("fault", "check", "failing", "cleared"), CASES, ids=[c[1] for c in CASES])
def test_each_check_flips_on_its_condition_only(
    fault: str, check: str, failing: float, cleared: float | None
) -> None:
    gpus = node(scenario(fault))
    before = gpus.at(10.0)
    assert set(checks(before, "1")) == set(CHECKS), "every check is always exported"
    assert not any(checks(before, "1").values()) and healthy(before, "1") == 1.0
    during = gpus.at(failing)
    failed = {name for name, value in checks(during, "1").items() if value}
    assert failed == {check}
    assert healthy(during, "1") == 0.0
    assert not any(checks(during, "0").values()), "the other GPU is not affected"
    if cleared is not None:
        after = gpus.at(cleared)
        assert not any(checks(after, "1").values()) and healthy(after, "1") == 1.0


def test_a_new_uncorrectable_ecc_error_fails_the_gpu() -> None:
    gpus = node(scenario("kind: ecc, gpu: 1, at: 50, uncorrected: 1, corrected: 12"))
    assert checks(gpus.at(10.0), "1")["uncorrectable_ecc"] == 0.0
    during = gpus.at(100.0)
    assert checks(during, "1")["uncorrectable_ecc"] == 1.0
    assert checks(during, "0")["uncorrectable_ecc"] == 0.0


def test_an_idle_link_running_slower_is_power_saving_not_degradation() -> None:
    gpus = node(
        """
name: idle-ada
gpus: {model: L40S, count: 1, workload: idle}
"""
    )
    series = gpus.at(60.0)
    generation = {
        labels[2]: v
        for (n, labels), v in series.items()
        if n == "suanli_gpu_pcie_link_generation" and labels[0] == "0"
    }
    assert generation["current"] < generation["max"], "the idle Ada card has stepped its link down"
    assert checks(series, "0")["pcie_link_degraded"] == 0.0


def test_boards_without_nvlink_or_remapper_pass_those_checks() -> None:
    series = node(
        """
name: workstation
gpus: {model: RTX-4090, count: 1, workload: training}
"""
    ).at(60.0)
    assert checks(series, "0") == dict.fromkeys(CHECKS, 0.0)


def test_without_a_volatile_counter_only_a_rise_of_the_lifetime_count_fails() -> None:
    from agent.collectors.health import HealthChecker, HealthOptions
    from agent.hw import GpuDevice, GpuReading, XidRecord

    device = GpuDevice(index=0, uuid="GPU-0", model="NVIDIA H100 80GB HBM3", pci_bus_id="")
    checker = HealthChecker(HealthOptions(), clock=lambda: 0.0)

    def failed(lifetime: float) -> bool:
        reading = GpuReading(device, ecc_errors={"uncorrected": lifetime})
        return checker.verdicts(reading, XidRecord())["uncorrectable_ecc"]

    assert not failed(3.0), "old errors from before the agent started do not fail the GPU"
    assert not failed(3.0)
    assert failed(4.0)
