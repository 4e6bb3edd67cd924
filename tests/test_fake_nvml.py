"""The fake NVML: units, shapes, captured quirks, faults, determinism and scenario loading."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from suanli_sim.binding import pynvml as P
from suanli_sim.fake_models import MIB
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import (
    Scenario,
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)


class Clock:
    """Simulated time the test sets."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def started(scenario: Scenario | str, t: float = 0.0) -> tuple[FakeNvml, Clock]:
    clock = Clock(t)
    nv = FakeNvml(load_scenario(scenario) if isinstance(scenario, str) else scenario, clock=clock)
    nv.nvmlInit()
    return nv, clock


def scenario(body: str) -> Scenario:
    return parse_scenario("name: test\nseed: 5\n" + body)


def field(nv: FakeNvml, handle: Any, field_id: int, scope: int = 0) -> tuple[int, int]:
    """(nvmlReturn, value) of one field, read the way its valueType says."""
    (value,) = nv.nvmlDeviceGetFieldValues(handle, [(field_id, scope)])
    member = {
        P.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
        P.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
    }
    if value.nvmlReturn != P.NVML_SUCCESS:
        return value.nvmlReturn, -1
    return P.NVML_SUCCESS, getattr(value.value, member[value.valueType])


# --- scenarios ----------------------------------------------------------------------------


# "Product Name" in the captures (the H20, not captured: NVIDIA's naming, as the H800's)
PRODUCT_NAMES = {
    "NVIDIA H100 80GB HBM3",
    "NVIDIA H800",
    "NVIDIA H20",
    "NVIDIA H200",
    "NVIDIA A100-SXM4-80GB",
    "NVIDIA L40S",
    "NVIDIA GeForce RTX 4090",
}


@pytest.mark.parametrize("name", builtin_scenarios())
def test_every_builtin_scenario_loads_and_answers(name: str) -> None:
    loaded = load_scenario(name)
    assert loaded.name == name and loaded.description and loaded.gpus
    nv = FakeNvml(loaded, clock=Clock(30.0))
    if name == "no-nvml":
        with pytest.raises(P.NVMLError_LibraryNotFound):
            nv.nvmlInit()
        return
    nv.nvmlInit()
    assert nv.nvmlDeviceGetCount() == len(loaded.gpus)
    names = {
        nv.nvmlDeviceGetName(nv.nvmlDeviceGetHandleByIndex(i)) for i in range(len(loaded.gpus))
    }
    assert names <= PRODUCT_NAMES


def test_the_required_builtin_scenarios_exist() -> None:
    required = {"h100-8", "h100-64", "a100-mig", "mixed-faults", "h800-8", "h20-8", "l40s-4"}
    assert required | {"rtx4090-8", "idle-8", "no-nvml", "h100-mig", "xid-storm"} <= set(
        builtin_scenarios()
    )
    assert len(load_scenario("h100-64").gpus) == 64


def test_a_scenario_file_loads_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ngpus: [{model: L40S, count: 3}]\n")
    loaded = load_scenario(str(path))
    assert [g.model for g in loaded.gpus] == ["L40S"] * 3
    assert loaded.nvml_version == "12.565.57.01"


BAD_SCENARIOS = [  # (YAML after "name: bad", what the message must say)
    ("gpus: [{model: L40S}, {model: L40S}, {model: H999}]", 'gpus[2].model: unknown model "H999"'),
    ("gpus: [{model: L40S, colour: red}]", "gpus[0].colour: unknown key"),
    ("gpus: [{model: L40S, count: two}]", "gpus[0].count: expected int"),
    ("gpus: [{model: L40S, mig: true}]", "gpus[0].mig: L40S is not MIG-capable"),
    ("gpus: [{model: L40S, workload: mining}]", 'gpus[0].workload: unknown workload "mining"'),
    ("gpus: [{model: L40S, power_limit_w: 900}]", "gpus[0].power_limit_w: 900 outside L40S's"),
    ("gpus: [{model: L40S}]\nseed: one", "seed: expected int"),
    ("gpus: []", "gpus: at least one GPU"),
    ("gpus: [{model: L40S}\n", "invalid YAML"),
]
BAD_FAULTS = [  # (one fault on a one-GPU scenario, what the message must say)
    ("{kind: meteor}", 'faults[0].kind: unknown fault kind "meteor"'),
    ("{kind: gpu_lost, gpu: 4}", "faults[0].gpu: GPU 4 does not exist"),
    ("{kind: slow_call, seconds: 1}", "faults[0].functions: required"),
    ("{kind: error_storm, functions: [nvmlFoo]}", 'functions[0]: unknown function "nvmlFoo"'),
    ("{kind: error_storm, error: Oops}", 'faults[0].error: unknown NVML error "Oops"'),
    ("{kind: gpu_lost, at: soon}", "faults[0].at: expected a number"),
    ("{kind: gpu_lost, at: 9, until: 3}", "faults[0].until: 3.0 is before"),
    ("{kind: nvml_absent, gpu: 0}", "faults[0].gpu: unknown key"),
]
BAD_SCENARIOS += [(f"gpus: [{{model: L40S}}]\nfaults: [{f}]", said) for f, said in BAD_FAULTS]


@pytest.mark.parametrize(("body", "expected"), BAD_SCENARIOS)
def test_a_bad_scenario_is_one_line_naming_the_yaml_path(body: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario("name: bad\n" + body, "bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml: ") and expected in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_an_unknown_model_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ngpus: {model: H999}\n")
    with pytest.raises(
        ScenarioError, match=r"gpus\.model: unknown model \"H999\"; known: .*H100-SXM5-80GB"
    ):
        load_scenario(str(path))
    with pytest.raises(ScenarioError, match="no such scenario"):
        load_scenario(str(tmp_path / "missing.yaml"))


# --- units and shapes ---------------------------------------------------------------------


def test_power_memory_and_utilisation_are_in_nvml_units_and_bounds() -> None:
    nv, clock = started("mixed-faults")
    for t in range(0, 600, 13):
        clock.t = float(t)
        for i in (0, 1, 2, 4, 5, 6, 7):  # GPU 3 is lost from t=60
            h = nv.nvmlDeviceGetHandleByIndex(i)
            limit = nv.nvmlDeviceGetEnforcedPowerLimit(h)
            assert limit == 700_000
            if not 30 <= t < 50:  # the power storm
                assert 60_000 < nv.nvmlDeviceGetPowerUsage(h) <= limit
            v2 = nv.nvmlDeviceGetMemoryInfo(h, version=nv.nvmlMemory_v2)
            v1 = nv.nvmlDeviceGetMemoryInfo(h)
            assert v2.total == v1.total == 81559 * MIB
            assert v2.used + v2.reserved + v2.free == v2.total and v2.used <= v2.total
            assert v1.used == v2.used + v2.reserved and v1.free == v2.free
            util = nv.nvmlDeviceGetUtilizationRates(h)
            assert 0 <= util.gpu <= 100 and 0 <= util.memory <= 100


def test_static_facts_come_from_the_captures() -> None:
    nv, _ = started("h100-8")
    h = nv.nvmlDeviceGetHandleByIndex(0)
    assert nv.nvmlDeviceGetName(h) == "NVIDIA H100 80GB HBM3"
    assert nv.nvmlDeviceGetPciInfo(h).pciDeviceId == 0x233010DE
    assert nv.nvmlDeviceGetPciInfo_v3(h).busId == "00000000:18:00.0"  # pynvml decodes
    assert nv.nvmlDeviceGetPowerManagementDefaultLimit(h) == 700_000
    assert nv.nvmlDeviceGetPowerManagementLimitConstraints(h) == [200_000, 700_000]
    assert nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_SM) == 1980
    assert nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_MEM) == 2619
    assert nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_VIDEO) == 1545
    assert (nv.nvmlDeviceGetMaxPcieLinkGeneration(h), nv.nvmlDeviceGetMaxPcieLinkWidth(h)) == (
        5,
        16,
    )
    assert nv.nvmlDeviceGetArchitecture(h) == nv.NVML_DEVICE_ARCH_HOPPER
    assert nv.nvmlDeviceGetCudaComputeCapability(h) == (9, 0)
    assert nv.nvmlDeviceGetMigMode(h) == [0, 0]
    assert nv.nvmlSystemGetDriverVersion() == "565.57.01"
    assert nv.nvmlSystemGetNVMLVersion() == "12.565.57.01"
    assert nv.nvmlSystemGetCudaDriverVersion() == nv.nvmlSystemGetCudaDriverVersion_v2() == 12070
    assert field(nv, h, nv.NVML_FI_DEV_NVLINK_LINK_COUNT) == (nv.NVML_SUCCESS, 18)
    uuids = {nv.nvmlDeviceGetUUID(nv.nvmlDeviceGetHandleByIndex(i)) for i in range(8)}
    assert len(uuids) == 8 and all(u.startswith("GPU-") and len(u) == 40 for u in uuids)


def test_training_on_h100_runs_hot_and_near_the_limit() -> None:
    """Against the load captures: an H100 under gpu-burn drew 629.45 W at 59 C, memory 55 C
    (H100-SXM5-80GB__590.48.01__nvgpuexp-load.txt); a real H200 under a sustained GEMM sat at its
    700 W limit, 692 W (../shared/reference/h200/README.md). Idle H100s of the 8-GPU capture read
    28-31 C: GPUs of one board differ by a few degrees, hence +-3 C."""
    nv, clock = started("h100-8")
    h = nv.nvmlDeviceGetHandleByIndex(0)
    powers, temps, capped = [], [], 0
    near_capture: list[tuple[int, int]] = []  # (GPU, memory) C within 10 W of 629.45 W
    for t in range(0, 580):
        clock.t = float(t)
        powers.append(nv.nvmlDeviceGetPowerUsage(h) / 1000)
        temps.append(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
        if abs(powers[-1] - 629.45) <= 10:
            near_capture.append((temps[-1], field(nv, h, nv.NVML_FI_DEV_MEMORY_TEMP)[1]))
        reasons = nv.nvmlDeviceGetCurrentClocksEventReasons(h)
        if reasons & nv.nvmlClocksEventReasonSwPowerCap:
            capped += 1
            assert nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM) < 1980
    assert 600 <= sum(powers) / len(powers) <= 692 and max(powers) <= 700
    assert len(near_capture) > 50
    assert all(56 <= gpu <= 62 and 52 <= memory <= 58 for gpu, memory in near_capture)
    assert max(temps) < 89, "training does not reach the slowdown threshold (H100 capture: 89 C)"
    assert 0 < capped < len(powers) / 2, "software power capping is occasional"
    violation = nv.nvmlDeviceGetViolationStatus(h, nv.NVML_PERF_POLICY_POWER)
    assert isinstance(violation, P.c_nvmlViolationTime_t)
    assert violation.violationTime == capped * 1_000_000_000  # ns, one second per capped tick


def test_energy_is_the_integral_of_power() -> None:
    nv, clock = started("h100-8")
    handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(8)]
    clock.t = 100.0
    start = [nv.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles]
    for h, begin in zip(handles, start, strict=True):
        energy, integral = begin, 0.0
        for t in range(100, 400):
            clock.t = float(t)
            power_mw = nv.nvmlDeviceGetPowerUsage(h)
            clock.t = t + 0.5
            half = nv.nvmlDeviceGetTotalEnergyConsumption(h)
            clock.t = t + 1.0
            now = nv.nvmlDeviceGetTotalEnergyConsumption(h)
            assert begin <= energy <= half <= now
            assert abs((now - energy) - power_mw) <= 2  # mJ over 1 s == mW
            integral += power_mw
            energy = now
        assert abs((energy - begin) - integral) < 0.0001 * integral


def test_counters_are_monotonic() -> None:
    nv, clock = started("mixed-faults")
    previous: dict[tuple[int, str], int] = {}
    for t in range(0, 400, 3):
        clock.t = float(t)
        for i in (0, 2, 5, 6):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            values = {
                "energy": nv.nvmlDeviceGetTotalEnergyConsumption(h),
                "power_ns": nv.nvmlDeviceGetViolationStatus(h, 0).violationTime,
                "thermal_ns": nv.nvmlDeviceGetViolationStatus(h, 1).violationTime,
                "replays": field(nv, h, nv.NVML_FI_DEV_PCIE_REPLAY_COUNTER)[1],
                "ecc": nv.nvmlDeviceGetTotalEccErrors(h, 0, nv.NVML_AGGREGATE_ECC),
                "tx": field(nv, h, nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, 1)[1],
                "rx": field(nv, h, nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, 7)[1],
                "nvlink_replay": field(nv, h, nv.NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL)[1],
            }
            for name, value in values.items():
                assert value >= previous.get((i, name), 0), (t, i, name)
                previous[(i, name)] = value
    assert previous[(6, "thermal_ns")] == 60 * 10**9  # thermal window 90..150 s
    assert previous[(0, "tx")] > 0 and previous[(0, "power_ns")] > 0


def test_pcie_throughput_is_kb_per_second_and_links_as_captured() -> None:
    nv, _ = started("l40s-4")
    busy, idle = nv.nvmlDeviceGetHandleByIndex(0), nv.nvmlDeviceGetHandleByIndex(3)
    assert 0 <= nv.nvmlDeviceGetPcieThroughput(idle, nv.NVML_PCIE_UTIL_TX_BYTES) < 1000
    assert nv.nvmlDeviceGetPcieThroughput(busy, nv.NVML_PCIE_UTIL_RX_BYTES) >= 100_000
    assert nv.nvmlDeviceGetCurrPcieLinkGeneration(idle) == 1  # Ada drops to Gen1 at idle
    assert nv.nvmlDeviceGetMaxPcieLinkGeneration(idle) == 4
    assert nv.nvmlDeviceGetPerformanceState(idle) == 8
    assert nv.nvmlDeviceGetClockInfo(idle, nv.NVML_CLOCK_MEM) == 405
    assert nv.nvmlDeviceGetCurrentClocksThrottleReasons(idle) & nv.nvmlClocksEventReasonGpuIdle


def test_idle_hopper_stays_in_p0_with_captured_clocks() -> None:
    nv, _ = started("idle-8", 50.0)
    for i in range(8):
        h = nv.nvmlDeviceGetHandleByIndex(i)
        assert nv.nvmlDeviceGetPerformanceState(h) == 0
        clocks = [nv.nvmlDeviceGetClockInfo(h, c) for c in range(4)]  # graphics, sm, mem, video
        assert clocks == [345, 345, 2619, 765]
        assert 70_000 <= nv.nvmlDeviceGetPowerUsage(h) <= 100_000
        assert nv.nvmlDeviceGetUtilizationRates(h).gpu == 0
        assert nv.nvmlDeviceGetEncoderUtilization(h)[0] == 0
        assert nv.nvmlDeviceGetCurrentClocksEventReasons(h) == nv.nvmlClocksEventReasonGpuIdle
        assert nv.nvmlDeviceGetCurrPcieLinkGeneration(h) == 5
        assert 28 <= nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU) <= 33


# --- captured quirks ----------------------------------------------------------------------


def test_sxm_and_passive_cards_have_no_fan_reading_but_geforce_does() -> None:
    for name in ("h100-8", "l40s-4", "a100-mig"):
        nv, _ = started(name)
        with pytest.raises(P.NVMLError_NotSupported):
            nv.nvmlDeviceGetFanSpeed(nv.nvmlDeviceGetHandleByIndex(0))
    nv, _ = started(scenario("gpus: {model: RTX-4090, count: 1}"))
    assert nv.nvmlDeviceGetFanSpeed(nv.nvmlDeviceGetHandleByIndex(0)) == 0  # 0 % idle, captured
    nv, _ = started("rtx4090-8", 60.0)
    assert 0 < nv.nvmlDeviceGetFanSpeed(nv.nvmlDeviceGetHandleByIndex(0)) <= 100


def test_geforce_lacks_ecc_serial_mig_and_memory_temperature() -> None:
    nv, _ = started("rtx4090-8")
    h = nv.nvmlDeviceGetHandleByIndex(0)
    for call in (
        lambda: nv.nvmlDeviceGetSerial(h),
        lambda: nv.nvmlDeviceGetMigMode(h),
        lambda: nv.nvmlDeviceGetTotalEccErrors(h, 0, 1),
        lambda: nv.nvmlDeviceGetTemperatureThreshold(h, nv.NVML_TEMPERATURE_THRESHOLD_MEM_MAX),
        lambda: nv.nvmlDeviceGetNvLinkState(h, 0),
        lambda: nv.nvmlDeviceGetRetiredPages(h, 0),
    ):
        with pytest.raises(P.NVMLError_NotSupported):
            call()
    assert nv.nvmlDeviceGetRemappedRows(h) == (0, 0, 0, 0)  # captured: rows, not pages
    # the 8-card capture's middle card: 26 C + T.Limit 57 C = 83 C max, slowdown 83 - (-2) = 85
    assert nv.nvmlDeviceGetTemperatureThreshold(h, nv.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN) == 85
    assert field(nv, h, nv.NVML_FI_DEV_MEMORY_TEMP) == (nv.NVML_ERROR_NOT_SUPPORTED, -1)
    assert field(nv, h, nv.NVML_FI_DEV_ECC_DBE_AGG_TOTAL) == (nv.NVML_ERROR_NOT_SUPPORTED, -1)
    assert field(nv, h, nv.NVML_FI_DEV_NVLINK_LINK_COUNT) == (nv.NVML_ERROR_NOT_SUPPORTED, -1)


def test_hopper_retired_pages_are_not_supported_but_ecc_and_memory_temp_are() -> None:
    nv, _ = started("h100-8", 20.0)
    h = nv.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(P.NVMLError_NotSupported):
        nv.nvmlDeviceGetRetiredPages(h, nv.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
    with pytest.raises(P.NVMLError_NotSupported):
        nv.nvmlDeviceGetRetiredPagesPendingStatus(h)
    assert nv.nvmlDeviceGetTotalEccErrors(h, 1, nv.NVML_VOLATILE_ECC) == 0
    status, memory_c = field(nv, h, nv.NVML_FI_DEV_MEMORY_TEMP)
    assert status == nv.NVML_SUCCESS and 30 < memory_c < 95
    thresholds = [nv.nvmlDeviceGetTemperatureThreshold(h, k) for k in range(4)]
    assert thresholds == [95, 89, 95, 87]  # shutdown, slowdown, memory max, gpu max


def test_mig_mode_hides_utilisation_remapping_and_nvlink() -> None:
    nv, _ = started("a100-mig", 10.0)
    mig, plain = nv.nvmlDeviceGetHandleByIndex(0), nv.nvmlDeviceGetHandleByIndex(4)
    assert nv.nvmlDeviceGetMigMode(mig) == [nv.NVML_DEVICE_MIG_ENABLE] * 2
    assert nv.nvmlDeviceGetMigMode(plain) == [nv.NVML_DEVICE_MIG_DISABLE] * 2
    for call in (
        nv.nvmlDeviceGetUtilizationRates,
        nv.nvmlDeviceGetEncoderUtilization,
        nv.nvmlDeviceGetRemappedRows,
        lambda h: nv.nvmlDeviceGetNvLinkState(h, 0),
    ):
        with pytest.raises(P.NVMLError_NotSupported):
            call(mig)
        call(plain)
    assert nv.nvmlDeviceGetPowerUsage(mig) > 0, "device-level values stay"
    assert field(nv, plain, nv.NVML_FI_DEV_NVLINK_LINK_COUNT) == (nv.NVML_SUCCESS, 12)
    assert isinstance(nv.nvmlDeviceGetCurrentClocksEventReasons(plain), int)  # 535 has it


def test_field_values_behave_like_nvml() -> None:
    nv, clock = started("h100-8", 30.0)
    h = nv.nvmlDeviceGetHandleByIndex(1)
    ids = [nv.NVML_FI_DEV_MEMORY_TEMP, 12345, (nv.NVML_FI_DEV_NVLINK_GET_STATE, 17)]
    ids += [(nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, 18), nv.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION]
    values = nv.nvmlDeviceGetFieldValues(h, ids)
    assert len(values) == 5 and values[0].fieldId == nv.NVML_FI_DEV_MEMORY_TEMP
    assert [v.nvmlReturn for v in values] == [
        nv.NVML_SUCCESS,
        nv.NVML_ERROR_NOT_SUPPORTED,
        nv.NVML_SUCCESS,
        nv.NVML_ERROR_INVALID_ARGUMENT,
        nv.NVML_SUCCESS,
    ]
    assert values[2].scopeId == 17 and values[2].value.uiVal == nv.NVML_FEATURE_ENABLED
    assert values[4].value.uiVal == nv.NVML_GPU_RECOVERY_ACTION_NONE
    assert values[0].timestamp == 30_000_000
    before = field(nv, h, nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, 3)[1]
    clock.t = 40.0
    after = field(nv, h, nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, 3)[1]
    link_kib_per_s = 26.562e9 / 1024
    assert 0.1 * link_kib_per_s * 10 < after - before < link_kib_per_s * 10


def test_recovery_action_field_is_absent_before_driver_565() -> None:
    nv, _ = started("l40s-4")
    h = nv.nvmlDeviceGetHandleByIndex(0)
    assert field(nv, h, nv.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION)[0] == nv.NVML_ERROR_NOT_SUPPORTED


def test_processes_are_pynvml_friendly_objects() -> None:
    nv, _ = started(
        scenario(
            "gpus: {model: H100-SXM5-80GB, workload: training, "
            "processes: [{pid: 11345, used_mib: 15690}, {pid: 11327}]}"
        )
    )
    procs = nv.nvmlDeviceGetComputeRunningProcesses(nv.nvmlDeviceGetHandleByIndex(0))
    assert [(p.pid, p.usedGpuMemory) for p in procs] == [(11345, 15690 * MIB), (11327, None)]
    nv, _ = started("idle-8")
    assert nv.nvmlDeviceGetComputeRunningProcesses(nv.nvmlDeviceGetHandleByIndex(0)) == []


# --- faults -------------------------------------------------------------------------------


def test_a_lost_gpu_raises_gpu_is_lost_only_on_its_handle() -> None:
    nv, clock = started("mixed-faults", 59.0)
    lost, other = nv.nvmlDeviceGetHandleByIndex(3), nv.nvmlDeviceGetHandleByIndex(2)
    assert nv.nvmlDeviceGetPowerUsage(lost) > 0
    clock.t = 60.0
    for call in (nv.nvmlDeviceGetPowerUsage, nv.nvmlDeviceGetName, nv.nvmlDeviceGetUUID):
        with pytest.raises(P.NVMLError_GpuIsLost):
            call(lost)
    with pytest.raises(P.NVMLError_GpuIsLost):
        nv.nvmlDeviceGetHandleByIndex(3)
    assert nv.nvmlDeviceGetCount() == 8
    assert nv.nvmlDeviceGetPowerUsage(other) > 0


def test_a_lost_gpu_comes_back_after_its_window() -> None:
    nv, clock = started(
        scenario(
            "gpus: {model: H100-SXM5-80GB, count: 2}\n"
            "faults: [{kind: gpu_lost, gpu: 1, at: 10, until: 20}]"
        )
    )
    h = nv.nvmlDeviceGetHandleByIndex(1)
    clock.t = 15.0
    with pytest.raises(P.NVMLError_GpuIsLost):
        nv.nvmlDeviceGetTemperature(h, 0)
    clock.t = 20.0
    assert nv.nvmlDeviceGetTemperature(h, 0) > 0


def test_absent_library_then_present() -> None:
    clock = Clock()
    nv = FakeNvml(
        scenario("gpus: {model: L40S}\nfaults: [{kind: nvml_absent, until: 30}]"), clock=clock
    )
    with pytest.raises(P.NVMLError_LibraryNotFound):
        nv.nvmlInit()
    with pytest.raises(P.NVMLError_Uninitialized):
        nv.nvmlDeviceGetCount()
    clock.t = 30.0
    nv.nvmlInit()
    assert nv.nvmlDeviceGetCount() == 1
    assert nv.calls["nvmlInit"] == 2
    nv = FakeNvml(scenario("gpus: {model: L40S}\nfaults: [{kind: driver_not_loaded, until: 5}]"))
    with pytest.raises(P.NVMLError_DriverNotLoaded):
        nv.nvmlInit()


def test_uninitialised_calls_raise_uninitialized() -> None:
    nv = FakeNvml(load_scenario("h100-8"))
    handle = nv.handles[0]
    for call in (
        nv.nvmlDeviceGetCount,
        nv.nvmlSystemGetDriverVersion,
        nv.nvmlShutdown,
        lambda: nv.nvmlDeviceGetPowerUsage(handle),
    ):
        with pytest.raises(P.NVMLError_Uninitialized):
            call()
    nv.nvmlInit()
    assert nv.nvmlDeviceGetPowerUsage(handle) > 0
    nv.nvmlShutdown()
    with pytest.raises(P.NVMLError_Uninitialized):
        nv.nvmlDeviceGetPowerUsage(handle)


def test_foreign_or_missing_handles_are_invalid_arguments() -> None:
    nv, _ = started("h100-8")
    other, _ = started("h100-8")
    for bad in (None, 0, other.nvmlDeviceGetHandleByIndex(0)):
        with pytest.raises(P.NVMLError_InvalidArgument):
            nv.nvmlDeviceGetName(bad)
    with pytest.raises(P.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetHandleByIndex(8)
    with pytest.raises(P.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetClockInfo(nv.nvmlDeviceGetHandleByIndex(0), 9)
    assert nv.nvmlDeviceGetMemoryInfo(handle=nv.handles[0]).total > 0, "keywords work as in pynvml"


def test_missing_functions_raise_function_not_found() -> None:
    nv, _ = started(
        scenario(
            "gpus: {model: H100-SXM5-80GB}\nfaults: [{kind: missing_functions, functions: "
            "[nvmlDeviceGetMemoryInfo_v2, nvmlSystemGetCudaDriverVersion_v2, "
            "nvmlDeviceGetComputeRunningProcesses_v3]}]"
        )
    )
    h = nv.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(P.NVMLError_FunctionNotFound):
        nv.nvmlDeviceGetMemoryInfo(h, version=nv.nvmlMemory_v2)
    assert nv.nvmlDeviceGetMemoryInfo(h).total == 81559 * MIB
    with pytest.raises(P.NVMLError_FunctionNotFound):
        nv.nvmlSystemGetCudaDriverVersion_v2()
    assert nv.nvmlSystemGetCudaDriverVersion() == 12070
    with pytest.raises(P.NVMLLibraryMismatchError):  # what pynvml's wrapper turns it into
        nv.nvmlDeviceGetComputeRunningProcesses(h)


def test_an_old_driver_has_only_throttle_reasons() -> None:
    nv, _ = started("h800-8")
    h = nv.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(P.NVMLError_FunctionNotFound):
        nv.nvmlDeviceGetCurrentClocksEventReasons(h)
    assert isinstance(nv.nvmlDeviceGetCurrentClocksThrottleReasons(h), int)
    with pytest.raises(P.NVMLError_NotSupported):  # ECC disabled in the H800 capture
        nv.nvmlDeviceGetTotalEccErrors(h, 0, 1)


def test_an_error_storm_hits_only_its_function_and_window() -> None:
    nv, clock = started("mixed-faults", 29.0)
    h = nv.nvmlDeviceGetHandleByIndex(0)
    assert nv.nvmlDeviceGetPowerUsage(h) > 0
    for t in (30.0, 49.9):
        clock.t = t
        with pytest.raises(P.NVMLError_Unknown):
            nv.nvmlDeviceGetPowerUsage(h)
        assert nv.nvmlDeviceGetTotalEnergyConsumption(h) > 0
    clock.t = 50.0
    assert nv.nvmlDeviceGetPowerUsage(h) > 0


def test_not_supported_everywhere_leaves_enumeration_working() -> None:
    nv, _ = started(
        scenario(
            "gpus: {model: H100-SXM5-80GB, count: 2}\n"
            "faults: [{kind: not_supported, gpu: 1, functions: ['*']}]"
        )
    )
    h0, h1 = nv.nvmlDeviceGetHandleByIndex(0), nv.nvmlDeviceGetHandleByIndex(1)
    for name in ("nvmlDeviceGetName", "nvmlDeviceGetPowerUsage", "nvmlDeviceGetUUID"):
        with pytest.raises(P.NVMLError_NotSupported):
            getattr(nv, name)(h1)
        getattr(nv, name)(h0)


def test_slow_calls_sleep_through_the_injected_sleep() -> None:
    slept: list[float] = []
    nv = FakeNvml(
        scenario(
            "gpus: {model: L40S, count: 2}\nfaults: [{kind: slow_call, gpu: 1, seconds: 7.5, "
            "functions: [nvmlDeviceGetPowerUsage]}]"
        ),
        clock=Clock(),
        sleep=slept.append,
    )
    nv.nvmlInit()
    nv.nvmlDeviceGetPowerUsage(nv.nvmlDeviceGetHandleByIndex(0))
    nv.nvmlDeviceGetTemperature(nv.nvmlDeviceGetHandleByIndex(1), 0)
    assert slept == []
    nv.nvmlDeviceGetPowerUsage(nv.nvmlDeviceGetHandleByIndex(1))
    assert slept == [7.5]


def test_reliability_faults_change_what_nvml_reports() -> None:
    nv, clock = started("mixed-faults", 44.0)
    h1, h5, h6, h2 = (nv.nvmlDeviceGetHandleByIndex(i) for i in (1, 5, 6, 2))
    assert nv.nvmlDeviceGetTotalEccErrors(h1, nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, 1) == 0
    assert nv.nvmlDeviceGetRemappedRows(h5) == (0, 1, 1, 0)  # pending from t=10
    assert nv.nvmlDeviceGetCurrPcieLinkWidth(h2) == 8 < nv.nvmlDeviceGetMaxPcieLinkWidth(h2)
    clock.t = 45.0
    assert nv.nvmlDeviceGetTotalEccErrors(h1, nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, 1) == 1
    assert field(nv, h1, nv.NVML_FI_DEV_ECC_DBE_AGG_TOTAL) == (nv.NVML_SUCCESS, 1)
    assert field(nv, h1, nv.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION)[1] == 1  # GPU reset
    clock.t = 100.0
    hot = nv.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
    assert nv.nvmlDeviceGetTemperature(h6, 0) > nv.nvmlDeviceGetTemperatureThreshold(h6, hot)
    reasons = nv.nvmlDeviceGetCurrentClocksEventReasons(h6)
    assert reasons & nv.nvmlClocksEventReasonHwThermalSlowdown
    assert reasons & nv.nvmlClocksEventReasonSwThermalSlowdown
    clock.t = 150.0
    assert not nv.nvmlDeviceGetCurrentClocksEventReasons(h6) & nv.nvmlClocksEventReasonHwSlowdown
    assert scenario_xids(load_scenario("mixed-faults")) == [(1, 45.0, 48), (3, 60.0, 79)]


def scenario_xids(loaded: Scenario) -> list[tuple[int, float, int]]:
    return sorted((f.gpus[0], f.at, f.code) for f in loaded.faults_of("xid"))


def test_row_remap_failure_and_nvlink_down() -> None:
    nv, clock = started(
        scenario(
            "gpus: {model: H100-SXM5-80GB, workload: training}\nfaults:\n"
            "  - {kind: row_remap_failure, gpu: 0, at: 5}\n"
            "  - {kind: nvlink_down, gpu: 0, at: 5, links: [2]}\n"
        )
    )
    h = nv.nvmlDeviceGetHandleByIndex(0)
    assert nv.nvmlDeviceGetRemappedRows(h) == (0, 0, 0, 0)
    clock.t = 5.0
    assert nv.nvmlDeviceGetRemappedRows(h) == (0, 1, 0, 1)
    assert nv.nvmlDeviceGetNvLinkState(h, 2) == 0 and nv.nvmlDeviceGetNvLinkState(h, 3) == 1
    frozen = field(nv, h, nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, 2)[1]
    clock.t = 50.0
    assert field(nv, h, nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, 2)[1] == frozen
    assert field(nv, h, nv.NVML_FI_DEV_NVLINK_GET_STATE, 2)[1] == 0


# --- determinism, counting, threads -------------------------------------------------------


def _readings(nv: FakeNvml) -> list[Any]:
    out: list[Any] = []
    for i in range(nv.nvmlDeviceGetCount()):
        h = nv.nvmlDeviceGetHandleByIndex(i)
        out += [
            nv.nvmlDeviceGetUUID(h),
            nv.nvmlDeviceGetPowerUsage(h),
            nv.nvmlDeviceGetTotalEnergyConsumption(h),
            nv.nvmlDeviceGetTemperature(h, 0),
            str(nv.nvmlDeviceGetUtilizationRates(h)),
            str(nv.nvmlDeviceGetMemoryInfo(h)),
        ]
    return out


def test_same_scenario_and_time_give_the_same_values() -> None:
    first, clock = started("h20-8", 123.4)
    second, _ = started("h20-8", 123.4)
    assert _readings(first) == _readings(second)
    clock.t = 300.0  # reading another time first does not change what 123.4 s reads
    _readings(first)
    clock.t = 123.4
    assert _readings(first) == _readings(second)
    reseeded, _ = started(scenario("gpus: {model: H20-96GB, count: 8, workload: inference}"), 123.4)
    assert _readings(reseeded) != _readings(second)


def test_calls_are_counted_per_function() -> None:
    nv, _ = started("h100-8")
    h = nv.nvmlDeviceGetHandleByIndex(0)
    for _ in range(3):
        nv.nvmlDeviceGetPowerUsage(h)
    with pytest.raises(P.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetPowerUsage(None)
    assert nv.calls["nvmlDeviceGetPowerUsage"] == 4
    assert nv.calls["nvmlInit"] == 1 and nv.calls["nvmlDeviceGetHandleByIndex"] == 1


def test_concurrent_readers_see_consistent_values() -> None:
    nv, _ = started("h100-64", 60.0)
    reference, _ = started("h100-64", 60.0)
    expected = [reference.nvmlDeviceGetTotalEnergyConsumption(h) for h in reference.handles]
    seen: dict[int, set[int]] = {i: set() for i in range(64)}
    errors: list[BaseException] = []

    def read(indices: range, reader: Callable[[Any], Any], record: bool) -> None:
        try:
            for _ in range(20):
                for i in indices:
                    value = reader(nv.nvmlDeviceGetHandleByIndex(i))
                    if record:
                        seen[i].add(value)
        except BaseException as err:  # reported below
            errors.append(err)

    energy, power = nv.nvmlDeviceGetTotalEnergyConsumption, nv.nvmlDeviceGetPowerUsage
    threads = [
        threading.Thread(target=read, args=(range(k, 64, 4), energy, True)) for k in range(4)
    ]
    threads.append(threading.Thread(target=read, args=(range(64), power, False)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [seen[i] for i in range(64)] == [{e} for e in expected]
    assert nv.calls["nvmlDeviceGetTotalEnergyConsumption"] == 20 * 64
    assert nv.calls["nvmlDeviceGetHandleByIndex"] == 2 * 20 * 64
