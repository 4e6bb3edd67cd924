"""The fake's GPU models against real captures, not against themselves.

Each value of suanli_sim/gpu_models.yaml names the captures it was read from; this test reads
those files (tests/fixtures/reference, verbatim copies of ../shared/reference) with its own
parser and checks the value, then checks that the fake NVML answers what the capture printed.
A value no capture of its model shows carries a written source and is listed in UNCAPTURED.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from suanli_sim.binding import pynvml as P
from suanli_sim.fake_models import FIELDS, MIB, MODELS, ORIGINS, load_models
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import parse_scenario
from tests.captures import FIXTURES, SHARED, Unreadable, read_field

# (model, field) of every value with no capture of its own model: each has a written source
UNCAPTURED: dict[str, set[str]] = {
    "H100-SXM5-80GB": {"memory_max_c"},  # the H100 drivers print only its T.Limit margin
    "H800-SXM5-80GB": {
        *("busy_clocks_mhz", "pstate_busy", "load_power_w", "load_temp_c", "load_memory_temp_c"),
        *("compute_capability", "bus_ids", "mig_idle_used_mib"),
    },
    "H20-96GB": set(FIELDS),  # no public H20 capture at all
    "H200-SXM-141GB": {"bus_ids"},
    "A100-SXM4-80GB": {
        *("busy_clocks_mhz", "pstate_busy", "load_power_w", "load_temp_c", "load_memory_temp_c"),
        *("compute_capability", "bus_ids"),
    },
    "L40S": {"bus_ids"},
    "RTX-4090": {
        *("busy_clocks_mhz", "pstate_busy", "load_power_w", "load_temp_c", "load_memory_temp_c"),
        *("compute_capability", "nvlink_links"),
    },
}

ARCHITECTURE = {  # how nvidia-smi prints nvmlDeviceGetArchitecture
    P.NVML_DEVICE_ARCH_AMPERE: "Ampere",
    P.NVML_DEVICE_ARCH_ADA: "Ada Lovelace",
    P.NVML_DEVICE_ARCH_HOPPER: "Hopper",
}


def data_value(model: str, field: str) -> Any:
    """A model's value as the data file writes it (the loader's input, by field name)."""
    m = MODELS[model]
    clocks = {"max_clocks_mhz": m.max_clocks, "idle_clocks_mhz": m.idle_clocks}
    clocks |= {"busy_clocks_mhz": m.busy_clocks}
    if field in clocks:
        c = clocks[field]
        return {"graphics": c.graphics, "sm": c.sm, "memory": c.memory, "video": c.video}
    na = "N/A" if not m.memory_temp else None
    values = {
        "architecture": ARCHITECTURE[m.architecture],
        "compute_capability": "{}.{}".format(*m.compute_capability),
        "power_default_w": m.power_w.default,
        "power_min_w": m.power_w.min,
        "power_max_w": m.power_w.max,
        "pstate_idle": m.pstates.idle,
        "pstate_busy": m.pstates.busy,
        "pcie_max_generation": m.pcie.max_generation,
        "pcie_max_width": m.pcie.max_width,
        "pcie_idle_generation": m.pcie.idle_generation,
        "shutdown_c": m.thresholds.shutdown,
        "slowdown_c": m.thresholds.slowdown,
        "gpu_max_c": m.thresholds.gpu_max,
        "memory_max_c": "N/A" if m.thresholds.memory_max is None else m.thresholds.memory_max,
        "idle_temp_c": m.temps_c.gpu_idle,
        "load_temp_c": m.temps_c.gpu_load,
        "idle_memory_temp_c": na or m.temps_c.memory_idle,
        "load_memory_temp_c": na or m.temps_c.memory_load,
        "load_power_w": m.load_ref_w,
        "bus_ids": list(m.bus_ids),
    }
    return values[field] if field in values else getattr(m, field)


def checks(kind: str) -> list[tuple[str, str, str]]:
    """(model, field, capture) of every value and each capture it names as `kind`."""
    found = []
    for model, origins in ORIGINS.items():
        for field, origin in origins.items():
            paths = origin.captures if kind == "capture" else origin.stand_in
            found += [(model, field, path) for path in paths]
    return found


@pytest.mark.parametrize(("model", "field", "capture"), checks("capture"))
def test_every_captured_value_is_what_its_capture_prints(
    model: str, field: str, capture: str
) -> None:
    try:
        printed = read_field(field, capture)
    except Unreadable as err:
        pytest.fail(f"{model}.{field}: {capture} does not show it ({err})")
    assert data_value(model, field) == printed, f"{model}.{field} differs from {capture}"


@pytest.mark.parametrize(("model", "field", "capture"), checks("stand_in"))
def test_a_value_taken_from_another_model_is_what_that_capture_prints(
    model: str, field: str, capture: str
) -> None:
    assert data_value(model, field) == read_field(field, capture), f"{model}.{field}"


def test_values_without_a_capture_of_their_model_are_listed_with_their_source() -> None:
    uncaptured = {
        model: {f for f, origin in origins.items() if not origin.captures}
        for model, origins in ORIGINS.items()
    }
    assert uncaptured == UNCAPTURED
    for model, fields in UNCAPTURED.items():
        for field in fields:
            source = ORIGINS[model][field].source
            assert source and len(source) > 20, f"{model}.{field}: no written source"


def test_every_model_but_the_h20_has_its_identity_from_a_capture_of_its_own() -> None:
    identity = ("name", "pci_device_id", "memory_total_mib", "power_default_w", "max_clocks_mhz")
    captured = {m for m in MODELS if all(ORIGINS[m][f].captures for f in identity)}
    assert set(MODELS) - captured == {"H20-96GB"}


# --- the fake NVML's answers against the captures -----------------------------------------

CLOCKS = {
    "graphics": P.NVML_CLOCK_GRAPHICS,
    "sm": P.NVML_CLOCK_SM,
    "memory": P.NVML_CLOCK_MEM,
    "video": P.NVML_CLOCK_VIDEO,
}
THRESHOLDS = {
    "shutdown_c": P.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN,
    "slowdown_c": P.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
    "gpu_max_c": P.NVML_TEMPERATURE_THRESHOLD_GPU_MAX,
    "memory_max_c": P.NVML_TEMPERATURE_THRESHOLD_MEM_MAX,
}
Answer = Callable[[FakeNvml, Any], Any]


def supported(call: Callable[[], Any]) -> bool:
    try:
        call()
    except P.NVMLError_NotSupported:
        return False
    return True


def field_value(nv: FakeNvml, h: Any, field_id: int) -> Any:
    (value,) = nv.nvmlDeviceGetFieldValues(h, [field_id])
    return None if value.nvmlReturn != P.NVML_SUCCESS else value.value.uiVal


def threshold(kind: int) -> Answer:
    def answer(nv: FakeNvml, h: Any) -> Any:
        try:
            return nv.nvmlDeviceGetTemperatureThreshold(h, kind)
        except P.NVMLError_NotSupported:
            return "N/A"

    return answer


# What the fake NVML answers for each field, in the unit nvidia-smi prints (MiB, W, MHz, C)
NVML: dict[str, Answer] = {
    "name": lambda nv, h: nv.nvmlDeviceGetName(h),
    "architecture": lambda nv, h: ARCHITECTURE[nv.nvmlDeviceGetArchitecture(h)],
    "compute_capability": lambda nv, h: "{}.{}".format(*nv.nvmlDeviceGetCudaComputeCapability(h)),
    "pci_device_id": lambda nv, h: nv.nvmlDeviceGetPciInfo(h).pciDeviceId,
    "pci_subsystem_id": lambda nv, h: nv.nvmlDeviceGetPciInfo(h).pciSubSystemId,
    "vbios": lambda nv, h: nv.nvmlDeviceGetVbiosVersion(h),
    "memory_total_mib": lambda nv, h: nv.nvmlDeviceGetMemoryInfo(h).total / MIB,
    "memory_reserved_mib": lambda nv, h: (
        nv.nvmlDeviceGetMemoryInfo(h, version=P.nvmlMemory_v2).reserved / MIB
    ),
    "power_default_w": lambda nv, h: nv.nvmlDeviceGetPowerManagementDefaultLimit(h) / 1000,
    "power_min_w": lambda nv, h: nv.nvmlDeviceGetPowerManagementLimitConstraints(h)[0] / 1000,
    "power_max_w": lambda nv, h: nv.nvmlDeviceGetPowerManagementLimitConstraints(h)[1] / 1000,
    "max_clocks_mhz": lambda nv, h: {
        k: nv.nvmlDeviceGetMaxClockInfo(h, c) for k, c in CLOCKS.items()
    },
    "idle_clocks_mhz": lambda nv, h: {
        k: nv.nvmlDeviceGetClockInfo(h, c) for k, c in CLOCKS.items()
    },
    "pstate_idle": lambda nv, h: nv.nvmlDeviceGetPerformanceState(h),
    "pcie_max_generation": lambda nv, h: nv.nvmlDeviceGetMaxPcieLinkGeneration(h),
    "pcie_max_width": lambda nv, h: nv.nvmlDeviceGetMaxPcieLinkWidth(h),
    "pcie_idle_generation": lambda nv, h: nv.nvmlDeviceGetCurrPcieLinkGeneration(h),
    **{name: threshold(kind) for name, kind in THRESHOLDS.items()},
    "nvlink_links": lambda nv, h: field_value(nv, h, P.NVML_FI_DEV_NVLINK_LINK_COUNT) or 0,
    "bus_ids": lambda nv, h: [nv.nvmlDeviceGetPciInfo(g).bus for g in nv.handles],
    "fan": lambda nv, h: supported(lambda: nv.nvmlDeviceGetFanSpeed(h)),
    "mig_capable": lambda nv, h: supported(lambda: nv.nvmlDeviceGetMigMode(h)),
    "ecc": lambda nv, h: supported(lambda: nv.nvmlDeviceGetTotalEccErrors(h, 0, 1)),
    "memory_temp": lambda nv, h: field_value(nv, h, P.NVML_FI_DEV_MEMORY_TEMP) is not None,
    "serial": lambda nv, h: supported(lambda: nv.nvmlDeviceGetSerial(h)),
    "retired_pages": lambda nv, h: supported(lambda: nv.nvmlDeviceGetRetiredPages(h, 0)),
}
# Readings the fake varies around the captured value per GPU and over time (idle power, the
# temperatures), or that need a load or MIG mode: checked through the model table above.
NOT_AN_IDLE_ANSWER = {
    *("idle_power_w", "idle_temp_c", "idle_memory_temp_c", "mig_idle_used_mib"),
    *("busy_clocks_mhz", "pstate_busy", "load_power_w", "load_temp_c", "load_memory_temp_c"),
}


def test_every_field_is_checked_through_nvml_or_said_not_to_be() -> None:
    assert set(NVML) | NOT_AN_IDLE_ANSWER == set(FIELDS)


def nvml_checks() -> list[tuple[str, str, str]]:
    return [c for c in checks("capture") if c[1] in NVML]


@pytest.mark.parametrize(("model", "field", "capture"), nvml_checks())
def test_the_fake_nvml_answers_what_the_capture_prints(
    model: str, field: str, capture: str
) -> None:
    count = len(MODELS[model].bus_ids)
    scenario = parse_scenario(f"name: c\ngpus: {{model: {model}, count: {count}, workload: idle}}")
    nv = FakeNvml(scenario, clock=lambda: 30.0)
    nv.nvmlInit()
    assert NVML[field](nv, nv.handles[0]) == read_field(field, capture), f"{model}.{field}"


# --- the data file ---------------------------------------------------------------------------


def test_the_fixtures_are_verbatim_copies_of_the_shared_references() -> None:
    if not SHARED.exists():
        pytest.skip("../shared/reference not beside the checkout")
    for path in FIXTURES.rglob("*"):
        if path.is_file() and path.name != "README.md":
            original = SHARED / path.relative_to(FIXTURES)
            assert path.read_bytes() == original.read_bytes(), path.name


BAD = [
    ("L40S: [{source: x, name: a, colour: red}]", "L40S[0].colour: unknown field"),
    ("L40S: [{source: x, name: a}, {source: y, name: b}]", "L40S[1].name: given twice"),
    ("L40S: [{name: a}]", "L40S[0]: needs either capture or source"),
    ("L40S: [{capture: [f], source: x}]", "needs either capture or source"),
    ("L40S: [{capture: [f], stand_in: [g]}]", "L40S[0]: stand_in goes with a source"),
    ("L40S: [{capture: f, name: a}]", "L40S[0].capture: expected a list"),
    ("L40S: [{source: x, name: a}]", "L40S: missing architecture, bus_ids"),
    ("L40S: [{source: x, fan: 1}]", "L40S[0].fan: unexpected value 1"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_the_data_file_is_read_strictly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        load_models(text)
