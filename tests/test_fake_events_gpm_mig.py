"""The fake NVML's XID events, GPM activity metrics and MIG devices behave as NVML's do."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from suanli_sim.binding import pynvml as P
from suanli_sim.fake_activity import METRICS, NAMES
from suanli_sim.fake_mig import DEFAULT_LAYOUTS
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


def test_gpm_metrics_are_the_exact_mean_of_the_workload() -> None:
    nv, clock = started("mixed-faults", 100.0)
    ids = [*METRICS, P.NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC]
    for gpu in (0, 5):
        handle = nv.handles[gpu]
        for t1, t2 in ((100.0, 160.5), (160.5, 161.25), (300.0, 300.0)):
            clock.t = t1
            first = sample(nv, handle)
            clock.t = t2
            second = sample(nv, handle)
            answer = metrics(nv, first, second, ids)
            for slot, metric in enumerate(METRICS):
                expected = nv.expected_activity(gpu, metric, t1, t2)
                assert answer[slot].nvmlReturn == P.NVML_SUCCESS
                assert abs(answer[slot].value - 100 * expected) < 1e-6
            assert answer[len(METRICS)].nvmlReturn == P.NVML_ERROR_NOT_SUPPORTED


def test_gpm_matches_the_workload_nvml_reports() -> None:
    """The graphics engine is busy exactly as often as utilization.gpu says."""
    nv, clock = started("h100-8", 0.0)
    handle = nv.handles[2]
    first = sample(nv, handle)
    utils = []
    for t in range(600):
        clock.t = float(t)
        utils.append(nv.nvmlDeviceGetUtilizationRates(handle).gpu)
    clock.t = 600.0
    (graphics,) = metrics(nv, first, sample(nv, handle), [P.NVML_GPM_METRIC_GRAPHICS_UTIL])
    assert abs(graphics.value - sum(utils) / len(utils)) < 0.01 * graphics.value


def activity(nv: FakeNvml, gpu: int, gpu_instance: int | None = None) -> dict[str, float]:
    return {n: nv.expected_activity(gpu, n, 100.0, 400.0, gpu_instance) for n in NAMES}


def test_gpm_levels_are_realistic_per_workload() -> None:
    nv, _ = started(
        scenario(
            "gpus:\n  - {model: H100-SXM5-80GB, workload: training}\n"
            "  - {model: H100-SXM5-80GB, workload: memory-bound}\n"
            "  - {model: H100-SXM5-80GB, workload: inference}\n  - {model: H100-SXM5-80GB}\n"
        )
    )
    train, memory, infer, idle = (activity(nv, i) for i in range(4))
    assert 0.75 <= train["sm_util"] <= 0.9 and 0.35 <= train["sm_occupancy"] <= 0.6
    assert 0.3 <= train["any_tensor_util"] <= 0.55 and 0.25 <= train["dram_bw_util"] <= 0.55
    assert train["fp64_util"] == 0 and train["fp16_util"] < train["fp32_util"] < 0.15
    assert train["hmma_tensor_util"] == train["any_tensor_util"] > 0 == train["imma_tensor_util"]
    assert 0.65 <= memory["dram_bw_util"] <= 0.95 and 0.35 <= memory["sm_util"] <= 0.6
    assert memory["any_tensor_util"] < 0.05
    assert infer["sm_util"] < train["sm_util"] and infer["imma_tensor_util"] > 0
    assert set(idle.values()) == {0.0}
    for levels in (train, memory, infer):
        assert levels["sm_util"] <= levels["graphics_util"] <= 1
        assert all(0 <= levels[n] <= levels["sm_util"] for n in ("sm_occupancy", "fp32_util"))


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
    nv, clock = started("h100-mig", 50.0)
    parent = nv.handles[0]  # 3g.40gb, 2g.20gb, 1g.10gb x2: GPU instances 2, 3, 9, 10
    firsts = {gi: sample(nv, parent, gi) for gi in (2, 3, 9, 10)}
    whole = sample(nv, parent)
    clock.t = 90.0
    sm = [P.NVML_GPM_METRIC_SM_UTIL]
    weighted = 0.0
    for gi, first in firsts.items():
        (answer,) = metrics(nv, first, sample(nv, parent, gi), sm)
        expected = nv.expected_activity(0, "sm_util", 50.0, 90.0, gpu_instance=gi)
        assert abs(answer.value - 100 * expected) < 1e-6 and expected > 0
        sms = {2: 60, 3: 32, 9: 16, 10: 16}[gi]
        weighted += expected * sms / 132
    (answer,) = metrics(nv, whole, sample(nv, parent), sm)
    assert abs(answer.value - 100 * weighted) < 1e-6
    with pytest.raises(P.NVMLError_InvalidArgument):  # two different GPU instances
        metrics(nv, firsts[2], sample(nv, parent, 3), sm)
    with pytest.raises(P.NVMLError_NotFound):
        sample(nv, parent, 4)
    with pytest.raises(P.NVMLError_NotSupported):  # GPU 4 is not in MIG mode
        sample(nv, nv.handles[4], 2)
    idle = nv.expected_activity(3, "sm_util", 50.0, 90.0, gpu_instance=2)
    assert idle == 0.0 < nv.expected_activity(3, "sm_util", 50.0, 90.0, gpu_instance=1)


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
    assert len(DEFAULT_LAYOUTS[model]) == len(devices)


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
