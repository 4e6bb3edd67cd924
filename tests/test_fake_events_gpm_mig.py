"""The fake NVML's XID events, GPM activity metrics and MIG devices behave as NVML's do."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from suanli_sim.binding import pynvml as P
from suanli_sim.fake_models import MIB
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import Scenario, ScenarioError, load_scenario, parse_scenario

XID = P.nvmlEventTypeXidCriticalError
UUID = re.compile(r"^MIG-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def started(scenario: Scenario | str, t: float = 0.0) -> tuple[FakeNvml, Clock]:
    clock = Clock(t)
    loaded = load_scenario(scenario) if isinstance(scenario, str) else scenario
    nv = FakeNvml(loaded, clock=clock, sleep=lambda s: None)
    nv.nvmlInit()
    return nv, clock


def scenario(body: str) -> Scenario:
    return parse_scenario("name: test\nseed: 5\n" + body)


def listen(nv: FakeNvml, gpus: range | list[int]) -> Any:
    event_set = nv.nvmlEventSetCreate()
    for i in gpus:
        nv.nvmlDeviceRegisterEvents(nv.handles[i], XID, event_set)
    return event_set


def drain(nv: FakeNvml, event_set: Any) -> list[tuple[int, int]]:
    """Every pending event as (GPU, XID), without waiting; the GPU known by its handle, as a
    lost GPU's handle answers GPU_IS_LOST to nvmlDeviceGetIndex too."""
    out = []
    while True:
        try:
            event = nv.nvmlEventSetWait_v2(event_set, 0)
        except P.NVMLError_Timeout:
            return out
        assert event.eventType == XID
        out.append((nv.handles.index(event.device), event.eventData))


# --- events ---------------------------------------------------------------------------------


def test_xid_events_arrive_once_in_time_order_even_from_a_lost_gpu() -> None:
    nv, clock = started("mixed-faults", 0.0)
    event_set = listen(nv, range(8))
    clock.t = 44.0
    assert drain(nv, event_set) == []
    clock.t = 100.0  # XID 48 on GPU 1 at 45 s; GPU 3 reports XID 79 as it is lost at 60 s
    with pytest.raises(P.NVMLError_GpuIsLost):
        nv.nvmlDeviceGetPowerUsage(nv.handles[3])
    event = nv.nvmlEventSetWait(event_set, 0)
    assert (event.device, event.eventData) == (nv.handles[1], 48)
    assert event.gpuInstanceId == event.computeInstanceId == 0xFFFFFFFF  # not MIG-scoped
    assert drain(nv, event_set) == [(3, 79)]
    with pytest.raises(P.NVMLError_GpuIsLost):  # the driver answers nothing on that handle
        nv.nvmlDeviceGetIndex(nv.handles[3])
    clock.t = 500.0
    assert drain(nv, event_set) == [], "each event is delivered once"


def test_a_burst_of_a_thousand_xids_is_delivered_in_full_to_every_set() -> None:
    nv, clock = started("xid-storm", 0.0)
    first, second = listen(nv, range(8)), listen(nv, [0])
    clock.t = 4.9
    assert drain(nv, first) == []
    clock.t = 30.0
    assert drain(nv, first) == [(0, 13)] * 1000 + [(5, 95)]
    assert drain(nv, second) == [(0, 13)] * 1000
    assert nv.calls["nvmlEventSetWait_v2"] == 2 * 1000 + 1 + 3


def test_a_set_sees_only_events_after_it_registered() -> None:
    nv, clock = started("mixed-faults", 50.0)
    event_set = listen(nv, range(8))
    clock.t = 61.0
    assert drain(nv, event_set) == [(3, 79)]  # not the XID 48 of t=45


def test_a_wait_times_out_in_real_time_without_blocking_other_calls() -> None:
    nv, clock = started("mixed-faults", 50.0)
    event_set = listen(nv, [3])
    began = time.monotonic()
    with pytest.raises(P.NVMLError_Timeout):
        nv.nvmlEventSetWait_v2(event_set, 200)
    assert 0.19 <= time.monotonic() - began < 1.0
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(nv.nvmlEventSetWait_v2(event_set, 5000)))
    waiter.start()
    time.sleep(0.1)
    began = time.monotonic()
    assert nv.nvmlDeviceGetPowerUsage(nv.handles[0]) > 0  # not held up by the waiter
    assert time.monotonic() - began < 0.5  # the waiter waits 5 s: it holds no lock
    clock.t = 60.0  # the waiter sees simulated time move within a poll
    waiter.join(2.0)
    assert not waiter.is_alive() and got[0].eventData == 79


def test_registration_not_supported_on_one_gpu_only() -> None:
    nv, _ = started(
        scenario(
            "gpus: {model: H100-SXM5-80GB, count: 2}\n"
            "faults: [{kind: events_unsupported, gpu: 1}, {kind: xid, gpu: 0, at: 1, code: 31}]"
        )
    )
    event_set = nv.nvmlEventSetCreate()
    h0, h1 = nv.handles
    supported = nv.nvmlDeviceGetSupportedEventTypes(h0)
    assert supported & XID and supported & P.nvmlEventTypeDoubleBitEccError
    for call in (
        lambda: nv.nvmlDeviceGetSupportedEventTypes(h1),
        lambda: nv.nvmlDeviceRegisterEvents(h1, XID, event_set),
        lambda: nv.nvmlDeviceRegisterEvents(h0, P.nvmlEventTypeAll, event_set),  # some unsupported
    ):
        with pytest.raises(P.NVMLError_NotSupported):
            call()
    nv.nvmlDeviceRegisterEvents(h0, XID, event_set)
    h800, _ = started("h800-8")  # ECC disabled: no ECC events
    assert not h800.nvmlDeviceGetSupportedEventTypes(h800.handles[0]) & (
        P.nvmlEventTypeSingleBitEccError | P.nvmlEventTypeDoubleBitEccError
    )


def test_shutdown_ends_every_set_and_wakes_its_waiters() -> None:
    nv, clock = started("mixed-faults", 50.0)
    old = listen(nv, range(8))
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            nv.nvmlEventSetWait_v2(old, 5000)
        except P.NVMLError as err:
            errors.append(err)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.1)
    nv.nvmlShutdown()
    waiter.join(1.0)
    assert not waiter.is_alive() and isinstance(errors[0], P.NVMLError_Uninitialized)
    nv.nvmlInit()
    clock.t = 70.0
    with pytest.raises(P.NVMLError_Uninitialized):
        nv.nvmlEventSetWait_v2(old, 0)
    new = listen(nv, [0, 1, 2])
    clock.t = 45.0  # registered at 70 s: the XID of 45 s came before
    assert drain(nv, new) == []
    nv.nvmlEventSetFree(new)
    for call in (lambda: nv.nvmlEventSetWait_v2(new, 0), lambda: nv.nvmlEventSetFree(new)):
        with pytest.raises(P.NVMLError_InvalidArgument):
            call()
    with pytest.raises(P.NVMLError_InvalidArgument):
        nv.nvmlEventSetWait_v2(None, 0)


def test_an_event_set_is_a_pynvml_pointer() -> None:
    nv, _ = started("h100-8")
    event_set = nv.nvmlEventSetCreate()
    assert type(event_set) is P.c_nvmlEventSet_t
    assert nv.nvmlDeviceGetIndex(nv.handles[5]) == 5


# --- GPM ------------------------------------------------------------------------------------


def sample(nv: FakeNvml, handle: Any, gpu_instance: int | None = None) -> Any:
    taken = nv.nvmlGpmSampleAlloc()
    if gpu_instance is None:
        return nv.nvmlGpmSampleGet(handle, taken)
    return nv.nvmlGpmMigSampleGet(handle, gpu_instance, taken)


def metrics(nv: FakeNvml, first: Any, second: Any, ids: list[int]) -> Any:
    request = P.c_nvmlGpmMetricsGet_t()
    request.version, request.numMetrics = P.NVML_GPM_METRICS_GET_VERSION, len(ids)
    request.sample1, request.sample2 = first, second
    for slot, metric in enumerate(ids):
        request.metrics[slot].metricId = metric
    answer = nv.nvmlGpmMetricsGet(request)
    assert answer is request
    return answer.metrics[: len(ids)]


@pytest.mark.parametrize(
    ("name", "supported"),
    [
        *[("h100-8", 1), ("h800-8", 1), ("h20-8", 1), ("h200-8", 1)],
        *[("l40s-4", 0), ("rtx4090-8", 0), ("a100-mig", 0)],
    ],
)
def test_gpm_is_supported_on_hopper_only(name: str, supported: int) -> None:
    nv, _ = started(name, 10.0)
    for handle in nv.handles:
        answer = nv.nvmlGpmQueryDeviceSupport(handle)
        assert type(answer) is P.c_nvmlGpmSupport_t and answer.isSupportedDevice == supported
    if not supported:
        with pytest.raises(P.NVMLError_NotSupported):
            sample(nv, nv.handles[0])


# GPM metrics by name, as the H200 capture's table names them (../shared/reference/h200/README.md)
GPM = {
    "graphics": P.NVML_GPM_METRIC_GRAPHICS_UTIL,
    "sm": P.NVML_GPM_METRIC_SM_UTIL,
    "occupancy": P.NVML_GPM_METRIC_SM_OCCUPANCY,
    "any_tensor": P.NVML_GPM_METRIC_ANY_TENSOR_UTIL,
    "hmma": P.NVML_GPM_METRIC_HMMA_TENSOR_UTIL,
    "imma": P.NVML_GPM_METRIC_IMMA_TENSOR_UTIL,
    "dfma": P.NVML_GPM_METRIC_DFMA_TENSOR_UTIL,
    "dmma": P.NVML_GPM_METRIC_DMMA_TENSOR_UTIL,
    "dram": P.NVML_GPM_METRIC_DRAM_BW_UTIL,
    "fp64": P.NVML_GPM_METRIC_FP64_UTIL,
    "fp32": P.NVML_GPM_METRIC_FP32_UTIL,
    "fp16": P.NVML_GPM_METRIC_FP16_UTIL,
}


def gpm(
    nv: FakeNvml, clock: Clock, gpu: int, t1: float, t2: float, gi: int | None = None
) -> dict[str, float]:
    """Every GPM metric between samples taken at t1 and t2, in percent, as NVML answers."""
    clock.t = t1
    first = sample(nv, nv.handles[gpu], gi)
    clock.t = t2
    answers = metrics(nv, first, sample(nv, nv.handles[gpu], gi), list(GPM.values()))
    assert all(a.nvmlReturn == P.NVML_SUCCESS for a in answers)
    return {name: a.value for name, a in zip(GPM, answers, strict=True)}


ONE_JOB = (  # GPU 0 computes only while its job runs, 100 s to 200 s
    "gpus: {model: H100-SXM5-80GB, workload: training}\n"
    "jobs: [{id: '7', scheduler: slurm-v2, gpus: [0], start: 100, end: 200}]\n"
)


def test_gpm_metrics_are_means_over_the_time_between_the_samples() -> None:
    """NVML: a GPM metric is the activity between its two samples. So, by hand: an idle stretch
    reads 0 (the H200 capture's idle row: all 0.00); [50, 150] is half idle, half the job,
    and reads half of [100, 150]; a window is the time-weighted mean of its two halves."""
    nv, clock = started(scenario(ONE_JOB))
    assert set(gpm(nv, clock, 0, 0.0, 100.0).values()) == {0.0}
    busy = gpm(nv, clock, 0, 100.0, 150.0)
    straddling = gpm(nv, clock, 0, 50.0, 150.0)
    assert busy["sm"] > 50 and busy["graphics"] > 90
    for name in GPM:
        assert straddling[name] == pytest.approx(busy[name] * 50 / 100, abs=1e-9)
    whole, early, late = (gpm(nv, clock, 0, *w) for w in ((100, 160.5), (100, 130), (130, 160.5)))
    for name in GPM:
        assert whole[name] == pytest.approx((early[name] * 30 + late[name] * 30.5) / 60.5)
    clock.t = 120.0
    first = sample(nv, nv.handles[0])
    (other,) = metrics(
        nv, first, sample(nv, nv.handles[0]), [P.NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC]
    )
    assert other.nvmlReturn == P.NVML_ERROR_NOT_SUPPORTED  # a metric the fake does not model


def check_against_h200_gemm(levels: dict[str, float], utilization: float) -> None:
    """What the real H200 showed under GEMMs (../shared/reference/h200/README.md): SM activity
    at most what NVML's utilization says (0.956 of 0.99, 0.967 of 1.00) and tensor activity at
    most SM activity (0.928 of 0.956), occupancy below SM activity (0.141); ANY_TENSOR is the sum
    of the per-type tensor metrics (bf16 27.3 = HMMA 27.3; int8 5.7 = IMMA 5.7; fp64 46.0 = DFMA
    46.0); no FP64 pipe or DFMA/DMMA activity without fp64 work."""
    assert levels["sm"] <= 0.967 * utilization + 1e-9
    assert levels["occupancy"] < levels["sm"] and levels["any_tensor"] <= levels["sm"]
    per_type = levels["hmma"] + levels["imma"] + levels["dfma"] + levels["dmma"]
    assert levels["any_tensor"] == pytest.approx(per_type)
    assert levels["fp64"] == levels["dfma"] == levels["dmma"] == 0.0


def test_gpm_levels_per_workload_follow_the_real_h200() -> None:
    nv, clock = started(
        scenario(
            "gpus:\n  - {model: H100-SXM5-80GB, workload: training}\n"
            "  - {model: H100-SXM5-80GB, workload: memory-bound}\n"
            "  - {model: H100-SXM5-80GB, workload: inference}\n  - {model: H100-SXM5-80GB}\n"
        )
    )
    utilization = [0.0] * 4
    for t in range(100, 400):  # NVML's utilization.gpu, each second of the window
        clock.t = float(t)
        for gpu in range(4):
            utilization[gpu] += nv.nvmlDeviceGetUtilizationRates(nv.handles[gpu]).gpu / 300
    train, memory, infer, idle = (gpm(nv, clock, gpu, 100.0, 400.0) for gpu in range(4))
    for gpu, levels in enumerate((train, memory, infer)):
        check_against_h200_gemm(levels, utilization[gpu])
    assert set(idle.values()) == {0.0} and utilization[3] == 0.0  # the capture's idle row
    # fp16-class training (bf16 GEMM row): tensor work is HMMA; no integer tensor work
    assert train["hmma"] == train["any_tensor"] > 10 and train["imma"] == 0.0
    assert infer["imma"] > 0.0, "int8 inference lights IMMA (the capture's int8 GEMM)"
    # assumed workload profiles: memory-bound moves more DRAM and does less tensor work
    assert memory["dram"] > train["dram"] and memory["any_tensor"] < train["any_tensor"]


def test_invalid_sample_pairs_are_rejected() -> None:
    nv, clock = started("h100-8", 10.0)
    h0, h1 = nv.handles[0], nv.handles[1]
    early, other = sample(nv, h0), sample(nv, h1)
    clock.t = 20.0
    late, empty = sample(nv, h0), nv.nvmlGpmSampleAlloc()
    sm = [P.NVML_GPM_METRIC_SM_UTIL]
    for first, second in ((early, other), (late, early), (early, empty), (early, None)):
        with pytest.raises(P.NVMLError_InvalidArgument):
            metrics(nv, first, second, sm)
    request = P.c_nvmlGpmMetricsGet_t()
    request.version, request.sample1, request.sample2 = 7, early, late
    with pytest.raises(P.NVMLError_ArgumentVersionMismatch):
        nv.nvmlGpmMetricsGet(request)
    assert metrics(nv, early, late, sm)[0].value > 0
    nv.nvmlGpmSampleFree(early)
    for call in (lambda: metrics(nv, early, late, sm), lambda: nv.nvmlGpmSampleFree(early)):
        with pytest.raises(P.NVMLError_InvalidArgument):
            call()
    assert type(empty) is P.c_nvmlGpmSample_t


def test_gpm_per_mig_instance_and_for_the_whole_gpu() -> None:
    """A MIG GPU's own GPM sample covers its instances, each counted by its share of the GPU's
    132 SMs (H100 SXM5): GPU 0 of h100-mig holds 3g.40gb, 2g.20gb and two 1g.10gb, with 60, 32,
    16 and 16 SMs in the H100 MIG capture, as GPU instances 2, 3, 9 and 10."""
    nv, clock = started("h100-mig", 50.0)
    sms = {2: 60, 3: 32, 9: 16, 10: 16}
    parts = {gi: gpm(nv, clock, 0, 50.0, 90.0, gi)["sm"] for gi in sms}
    assert all(value > 0 for value in parts.values())
    whole = gpm(nv, clock, 0, 50.0, 90.0)["sm"]
    weighted = (
        parts[2] * 60 / 132 + parts[3] * 32 / 132 + parts[9] * 16 / 132 + parts[10] * 16 / 132
    )
    assert whole == pytest.approx(weighted, abs=1e-9)
    parent = nv.handles[0]
    firsts = {gi: sample(nv, parent, gi) for gi in (2, 3)}
    sm = [P.NVML_GPM_METRIC_SM_UTIL]
    with pytest.raises(P.NVMLError_InvalidArgument):  # two different GPU instances
        metrics(nv, firsts[2], sample(nv, parent, 3), sm)
    with pytest.raises(P.NVMLError_NotFound):
        sample(nv, parent, 4)
    with pytest.raises(P.NVMLError_NotSupported):  # GPU 4 is not in MIG mode
        sample(nv, nv.handles[4], 2)
    # GPU 3: a training 4g.40gb (instance 1) beside an idle 3g.40gb (instance 2)
    assert set(gpm(nv, clock, 3, 50.0, 90.0, 2).values()) == {0.0}
    assert gpm(nv, clock, 3, 50.0, 90.0, 1)["sm"] > 0


# --- MIG ------------------------------------------------------------------------------------

H100_MIG = {  # profile: (SMs, MiB, copy engines), as in the H100-SXM5-80GB-MIG capture
    "3g.40gb": (60, 40448, 3),
    "2g.20gb": (32, 20096, 2),
    "1g.10gb": (16, 9984, 1),
}


def mig_devices(nv: FakeNvml, gpu: int) -> list[Any]:
    parent = nv.handles[gpu]
    found = []
    for index in range(nv.nvmlDeviceGetMaxMigDeviceCount(parent)):
        try:
            found.append(nv.nvmlDeviceGetMigDeviceHandleByIndex(parent, index))
        except P.NVMLError_NotFound:
            continue
    return found


def test_mig_devices_of_the_captured_h100_layout() -> None:
    nv, _ = started("h100-mig", 30.0)
    parent = nv.handles[0]
    assert nv.nvmlDeviceGetMaxMigDeviceCount(parent) == 7
    devices = mig_devices(nv, 0)
    assert [nv.nvmlDeviceGetGpuInstanceId(d) for d in devices] == [2, 3, 9, 10]
    assert {nv.nvmlDeviceGetComputeInstanceId(d) for d in devices} == {0}
    assert [nv.nvmlDeviceGetIndex(d) for d in devices] == [0, 1, 2, 3]
    for index in (4, 5, 6):
        with pytest.raises(P.NVMLError_NotFound):
            nv.nvmlDeviceGetMigDeviceHandleByIndex(parent, index)
    with pytest.raises(P.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetMigDeviceHandleByIndex(parent, 7)
    uuids = [nv.nvmlDeviceGetUUID(d) for d in devices]
    assert all(UUID.match(u) for u in uuids) and len(set(uuids)) == 4
    for device, profile in zip(devices, ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"], strict=True):
        attributes = nv.nvmlDeviceGetAttributes(device)
        assert type(attributes) is P.c_nvmlDeviceAttributes
        sms, mib, engines = H100_MIG[profile]
        assert attributes.multiprocessorCount == sms and attributes.memorySizeMB == mib
        assert attributes.sharedCopyEngineCount == engines == attributes.gpuInstanceSliceCount
        assert attributes.computeInstanceSliceCount == engines
        assert nv.nvmlDeviceGetName(device) == f"NVIDIA H100 80GB HBM3 MIG {profile}"
        assert nv.nvmlDeviceIsMigDeviceHandle(device).value == 1
        assert nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(device) is parent
        assert (
            nv.nvmlDeviceGetMigDeviceHandleByIndex(parent, nv.nvmlDeviceGetIndex(device)) is device
        )
    assert isinstance(nv.nvmlDeviceIsMigDeviceHandle(parent), P.c_uint)
    assert nv.nvmlDeviceIsMigDeviceHandle(parent).value == 0


def test_mig_memory_is_the_instance_s_and_grows_with_its_workload() -> None:
    nv, _ = started("h100-mig", 30.0)
    training, idle = mig_devices(nv, 3)  # 4g.40gb training beside an idle 3g.40gb
    for device in (training, idle):
        v2 = nv.nvmlDeviceGetMemoryInfo(device, version=P.nvmlMemory_v2)
        v1 = nv.nvmlDeviceGetMemoryInfo(device)
        assert v2.total == v1.total == 40448 * MIB and v2.reserved == 0
        assert v2.used + v2.free == v2.total and (v1.used, v1.free) == (v2.used, v2.free)
    assert nv.nvmlDeviceGetMemoryInfo(idle).used == 26 * MIB  # idle 3g.40gb, captured
    assert nv.nvmlDeviceGetMemoryInfo(training).used > 0.7 * 40448 * MIB
    parent = nv.nvmlDeviceGetMemoryInfo(nv.handles[3], version=P.nvmlMemory_v2)
    parts = sum(nv.nvmlDeviceGetMemoryInfo(d).used for d in (training, idle))
    assert parent.total == 81559 * MIB and parent.used == parts


def test_a_mig_handle_answers_only_mig_queries_and_the_gpu_keeps_device_level_values() -> None:
    nv, _ = started("h100-mig", 30.0)
    parent, (device, *_) = nv.handles[1], mig_devices(nv, 1)
    assert nv.nvmlDeviceGetAttributes_v2(device).multiprocessorCount == 132  # 7g.80gb
    for call in (
        nv.nvmlDeviceGetPowerUsage,
        nv.nvmlDeviceGetMaxMigDeviceCount,
        lambda h: nv.nvmlDeviceGetTemperature(h, 0),
        lambda h: nv.nvmlDeviceGetMigDeviceHandleByIndex(h, 0),
    ):
        with pytest.raises(P.NVMLError_NotSupported):
            call(device)
    assert nv.nvmlDeviceGetPowerUsage(parent) > 0 and nv.nvmlDeviceGetTemperature(parent, 0) > 0
    with pytest.raises(P.NVMLError_NotSupported):
        nv.nvmlDeviceGetUtilizationRates(parent)
    for call in (
        nv.nvmlDeviceGetAttributes,
        nv.nvmlDeviceGetGpuInstanceId,
        nv.nvmlDeviceGetComputeInstanceId,
    ):
        with pytest.raises(P.NVMLError_NotSupported):
            call(parent)
    with pytest.raises(P.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(parent)
    other, _ = started("h100-mig")
    with pytest.raises(P.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetUUID(mig_devices(other, 1)[0])


def test_gpus_without_mig_have_no_mig_devices() -> None:
    for name, gpu in (("h100-mig", 4), ("l40s-4", 0), ("a100-mig", 5)):
        nv, _ = started(name)
        assert nv.nvmlDeviceGetMaxMigDeviceCount(nv.handles[gpu]) == 0  # "zero if ... not enabled"
        with pytest.raises(P.NVMLError_InvalidArgument):
            nv.nvmlDeviceGetMigDeviceHandleByIndex(nv.handles[gpu], 0)


def test_a_lost_gpu_loses_its_mig_devices_too() -> None:
    nv, clock = started(
        scenario(
            "gpus: {model: H100-SXM5-80GB, mig: true}\nfaults: [{kind: gpu_lost, gpu: 0, at: 5}]"
        )
    )
    (device, *_) = mig_devices(nv, 0)
    clock.t = 5.0
    with pytest.raises(P.NVMLError_GpuIsLost):
        nv.nvmlDeviceGetUUID(device)


@pytest.mark.parametrize(
    ("model", "instances", "sms", "mib"),
    [
        ("H100-SXM5-80GB", [2, 3, 9, 10], [60, 32, 16, 16], [40448, 20096, 9984, 9984]),
        ("H200-SXM-141GB", [2, 3, 9, 10], [60, 32, 16, 16], [71424, 33280, 16384, 16384]),
        ("A100-SXM4-80GB", [3, 4, 5, 6], [14] * 4, [19968] * 4),
    ],
)
def test_mig_true_gives_the_captured_layout(
    model: str, instances: list[int], sms: list[int], mib: list[int]
) -> None:
    nv, _ = started(scenario(f"gpus: {{model: {model}, workload: inference, mig: true}}"))
    devices = mig_devices(nv, 0)
    assert [nv.nvmlDeviceGetGpuInstanceId(d) for d in devices] == instances
    attributes = [nv.nvmlDeviceGetAttributes(d) for d in devices]
    assert [a.multiprocessorCount for a in attributes] == sms
    assert [a.memorySizeMB for a in attributes] == mib


def test_builtin_mig_layouts_place_instances_as_the_driver_does() -> None:
    nv, _ = started("a100-mig")
    ids = [[nv.nvmlDeviceGetGpuInstanceId(d) for d in mig_devices(nv, i)] for i in range(4)]
    assert ids == [[3, 4, 5, 6], [1, 2], [0], [3, 4, 5, 13]]
    nv, _ = started("h100-mig")
    ids = [[nv.nvmlDeviceGetGpuInstanceId(d) for d in mig_devices(nv, i)] for i in range(4)]
    assert ids == [[2, 3, 9, 10], [0], list(range(7, 14)), [1, 2]]


BAD_LAYOUTS = [
    ("H100-SXM5-80GB", "[4g.40gb, 4g.40gb]", "needs 8 compute slices; H100-SXM5-80GB has 7"),
    ("H100-SXM5-80GB", "[3g.40gb, 3g.40gb, 1g.10gb]", "does not fit H100-SXM5-80GB's MIG"),
    (
        "H100-SXM5-80GB",
        "[1g.10gb, 5g.50gb]",
        'mig[1]: unknown H100-SXM5-80GB MIG profile "5g.50gb"',
    ),
    ("A100-SXM4-80GB", "[1g.10gb, 1g.18gb]", 'unknown A100-SXM4-80GB MIG profile "1g.18gb"'),
    ("H100-SXM5-80GB", "[]", "a MIG layout needs at least one GPU instance"),
    ("H100-SXM5-80GB", "maybe", "mig: expected list"),
    ("L40S", "[1g.10gb]", "mig: L40S is not MIG-capable"),
    ("H100-SXM5-80GB", "[{profile: 1g.10gb, workload: mining}]", 'unknown workload "mining"'),
    ("H100-SXM5-80GB", "[{profile: 1g.10gb, colour: red}]", "mig[0].colour: unknown key"),
]


@pytest.mark.parametrize(("model", "layout", "expected"), BAD_LAYOUTS)
def test_a_bad_mig_layout_is_a_one_line_scenario_error(
    model: str, layout: str, expected: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(f"name: bad\ngpus: [{{model: {model}, mig: {layout}}}]\n", "bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml: gpus[0].mig") and expected in message, message
    assert "\n" not in message


def test_event_fault_fields_are_checked() -> None:
    for fault, expected in (
        ("{kind: xid, gpu: 0, code: 13, count: 0}", "faults[0].count: must be at least 1"),
        ("{kind: xid, gpu: 0, code: 13, count: many}", "faults[0].count: expected int"),
        ("{kind: events_unsupported, gpu: 0, at: 5}", "faults[0].at: unknown key"),
    ):
        with pytest.raises(ScenarioError, match=re.escape(expected)):
            scenario(f"gpus: {{model: H100-SXM5-80GB}}\nfaults: [{fault}]")
    storm = load_scenario("xid-storm").faults_of("xid")
    assert [(f.gpus, f.at, f.code, f.count) for f in storm] == [
        ((0,), 5, 13, 1000),
        ((5,), 10, 95, 1),
    ]
