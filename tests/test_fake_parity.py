"""The fake NVML is pynvml-shaped: same names, signatures, error classes and struct classes."""

from __future__ import annotations

import ctypes
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

from suanli_sim.binding import pynvml  # the simulator's one door to the real binding
from suanli_sim.fake_functions import FUNCTIONS
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import Scenario, builtin_scenarios, load_scenario, parse_scenario

# A scenario in which every fault kind that makes NVML raise is active at t=10.
_FAULTY = """
name: faulty
seed: 3
gpus:
  - {model: H100-SXM5-80GB, count: 2, workload: training}
  - {model: RTX-4090, workload: inference, processes: [{pid: 4242, used_mib: 15690}, {pid: 7}]}
  - {model: A100-SXM4-80GB, workload: idle, mig: true}
  - {model: H100-SXM5-80GB, workload: training, mig: [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]}
faults:
  - {kind: gpu_lost, gpu: 0, at: 5}
  - {kind: error_storm, gpu: 1, at: 5, functions: [nvmlDeviceGetPowerUsage]}
  - {kind: error_storm, gpu: 1, at: 5, functions: [nvmlDeviceGetTemperature], error: Timeout}
  - {kind: not_supported, gpu: 2, functions: [nvmlDeviceGetClockInfo]}
  - kind: missing_functions
    functions: [nvmlDeviceGetMemoryInfo_v2, nvmlSystemGetCudaDriverVersion_v2]
"""


Call = tuple[str, tuple[Any, ...], dict[str, Any]]


def _nvml_functions() -> list[str]:
    return sorted(FUNCTIONS)


def _fake_functions() -> set[str]:
    return {
        name
        for name, _ in inspect.getmembers(FakeNvml, callable)
        if name.startswith("nvml") and name[4:5].isupper()
    }


def _params(fn: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_the_fake_implements_exactly_the_listed_functions() -> None:
    assert _fake_functions() == set(FUNCTIONS)


@pytest.mark.parametrize("name", _nvml_functions())
def test_function_exists_in_pynvml_with_the_same_signature(name: str) -> None:
    real = getattr(pynvml, name, None)
    assert inspect.isfunction(real), f"pynvml has no function {name}"
    fake = getattr(FakeNvml(load_scenario("h100-8")), name)
    assert _params(fake) == _params(real)


def _takes_handle_only() -> list[str]:
    return [
        n
        for n in sorted(FUNCTIONS)
        if n.startswith("nvmlDevice")
        and n != "nvmlDeviceGetCount"
        and len(inspect.signature(getattr(pynvml, n)).parameters) == 1
    ]


def _calls(nv: FakeNvml, handle: Any) -> Iterator[Call]:
    """Every implemented function with every meaningful argument, on one handle."""
    yield from (
        (name, (), {})
        for name in (
            "nvmlSystemGetDriverVersion",
            "nvmlSystemGetNVMLVersion",
            "nvmlSystemGetCudaDriverVersion",
            "nvmlSystemGetCudaDriverVersion_v2",
            "nvmlDeviceGetCount",
        )
    )
    yield "nvmlDeviceGetHandleByIndex", (handle.index,), {}
    for name in _takes_handle_only():
        yield name, (handle,), {}
    clocks = (nv.NVML_CLOCK_GRAPHICS, nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM, nv.NVML_CLOCK_VIDEO)
    for clock in clocks:
        yield "nvmlDeviceGetClockInfo", (handle, clock), {}
        yield "nvmlDeviceGetMaxClockInfo", (handle, clock), {}
    yield "nvmlDeviceGetTemperature", (handle, nv.NVML_TEMPERATURE_GPU), {}
    for threshold in range(nv.NVML_TEMPERATURE_THRESHOLD_COUNT):
        yield "nvmlDeviceGetTemperatureThreshold", (handle, threshold), {}
    yield "nvmlDeviceGetMemoryInfo", (handle,), {"version": nv.nvmlMemory_v2}
    for policy in range(6):
        yield "nvmlDeviceGetViolationStatus", (handle, policy), {}
    for counter in (nv.NVML_PCIE_UTIL_TX_BYTES, nv.NVML_PCIE_UTIL_RX_BYTES):
        yield "nvmlDeviceGetPcieThroughput", (handle, counter), {}
    for cause in range(nv.NVML_PAGE_RETIREMENT_CAUSE_COUNT):
        yield "nvmlDeviceGetRetiredPages", (handle, cause), {}
    for error in (nv.NVML_MEMORY_ERROR_TYPE_CORRECTED, nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED):
        for counter in (nv.NVML_VOLATILE_ECC, nv.NVML_AGGREGATE_ECC):
            yield "nvmlDeviceGetTotalEccErrors", (handle, error, counter), {}
    yield "nvmlDeviceGetNvLinkState", (handle, 0), {}
    yield "nvmlDeviceGetGpuFabricInfo", (handle, ctypes.byref(nv.c_nvmlGpuFabricInfo_t())), {}
    yield "nvmlDeviceGetFieldValues", (handle, [nv.NVML_FI_DEV_MEMORY_TEMP, (139, 1)]), {}
    for since in (0, nv.epoch_us + 9_000_000, 1 << 63):  # every sample, the last second's, none
        yield "nvmlDeviceGetProcessUtilization", (handle, since), {}
    yield from _event_calls(nv, handle)
    yield from _gpm_calls(nv, handle)
    yield from _mig_calls(nv, handle)


def _event_calls(nv: FakeNvml, handle: Any) -> Iterator[Call]:
    event_set = nv.nvmlEventSetCreate()
    yield "nvmlEventSetCreate", (), {}
    yield "nvmlDeviceRegisterEvents", (handle, nv.nvmlEventTypeXidCriticalError, event_set), {}
    yield "nvmlDeviceRegisterEvents", (handle, nv.nvmlEventTypeAll, event_set), {}
    yield "nvmlEventSetWait_v2", (event_set, 0), {}
    yield "nvmlEventSetWait", (event_set, 0), {}
    yield "nvmlEventSetFree", (event_set,), {}
    yield "nvmlEventSetFree", (event_set,), {}  # freed already: InvalidArgument


def _gpm_calls(nv: FakeNvml, handle: Any) -> Iterator[Call]:
    first, second = nv.nvmlGpmSampleAlloc(), nv.nvmlGpmSampleAlloc()
    yield "nvmlGpmSampleAlloc", (), {}
    yield "nvmlGpmQueryDeviceSupport", (handle,), {}
    yield "nvmlGpmSampleGet", (handle, first), {}
    yield "nvmlGpmSampleGet", (handle, second), {}
    request = nv.c_nvmlGpmMetricsGet_t()
    request.version, request.numMetrics = nv.NVML_GPM_METRICS_GET_VERSION, 3
    request.sample1, request.sample2 = first, second
    for slot, metric in enumerate((1, 2, nv.NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC)):
        request.metrics[slot].metricId = metric
    yield "nvmlGpmMetricsGet", (request,), {}
    for gpu_instance in (0, 2, 9):
        yield "nvmlGpmMigSampleGet", (handle, gpu_instance, first), {}
    yield "nvmlGpmSampleFree", (first,), {}
    yield "nvmlGpmSampleFree", (second,), {}


def _mig_calls(nv: FakeNvml, handle: Any) -> Iterator[Call]:
    """Every MIG slot, and every handle-only function on each MIG device found."""
    for index in range(8):
        yield "nvmlDeviceGetMigDeviceHandleByIndex", (handle, index), {}
        try:
            mig = nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, index)
        except nv.NVMLError:
            continue
        for name in _takes_handle_only():
            yield name, (mig,), {}
        yield "nvmlDeviceGetMemoryInfo", (mig,), {"version": nv.nvmlMemory_v2}
        yield "nvmlDeviceGetClockInfo", (mig, nv.NVML_CLOCK_SM), {}


def _outcomes(scenario: Scenario, t: float) -> Iterator[tuple[str, Any]]:
    nv = FakeNvml(scenario, clock=lambda: t)
    nv.nvmlInit()
    for index in range(nv.nvmlDeviceGetCount()):
        handle = nv.handles[index]
        for name, args, kwargs in _calls(nv, handle):
            try:
                yield name, getattr(nv, name)(*args, **kwargs)
            except Exception as err:  # what it raises is the point of the test
                yield name, err


def _all_outcomes() -> list[tuple[str, Any]]:
    scenarios = [load_scenario(name) for name in builtin_scenarios() if name != "no-nvml"]
    scenarios.append(parse_scenario(_FAULTY))
    return [o for s in scenarios for t in (0.0, 10.0) for o in _outcomes(s, t)]


OUTCOMES = _all_outcomes()
_PROCESS_FIELDS = [name for name, _ in pynvml.c_nvmlProcessInfo_v3_t._fields_]


def test_every_function_is_exercised() -> None:
    assert {name for name, _ in OUTCOMES} == set(FUNCTIONS) - {"nvmlInit", "nvmlShutdown"}


def test_every_error_raised_is_the_pynvml_class_for_its_code() -> None:
    errors = [(name, out) for name, out in OUTCOMES if isinstance(out, BaseException)]
    kinds = {type(err).__name__ for _, err in errors}
    assert {"NVMLError_GpuIsLost", "NVMLError_NotSupported", "NVMLError_Unknown"} <= kinds
    assert {"NVMLError_FunctionNotFound", "NVMLError_Timeout", "NVMLError_InvalidArgument"} <= kinds
    assert "NVMLError_NotFound" in kinds  # MIG slots without a MIG device
    for name, err in errors:
        assert isinstance(err, pynvml.NVMLError), f"{name} raised {err!r}"
        assert type(err) is pynvml.nvmlExceptionClass(err.value)
        assert type(err) is getattr(pynvml, type(err).__name__)


def test_every_struct_returned_is_the_pynvml_class_of_that_name() -> None:
    structs = processes = samples = 0
    for name, out in OUTCOMES:
        if isinstance(out, BaseException):
            continue
        if isinstance(out, pynvml.Structure):
            structs += 1
            assert getattr(pynvml, type(out).__name__) is type(out), name
        elif name == "nvmlDeviceGetFieldValues":
            assert out._type_ is pynvml.c_nvmlFieldValue_t
        elif name.startswith("nvmlDeviceGetComputeRunningProcesses"):
            assert all(isinstance(p, pynvml.nvmlFriendlyObject) for p in out)
            assert all(set(vars(p)) == set(_PROCESS_FIELDS) for p in out)
            processes += len(out)
        elif name == "nvmlDeviceGetProcessUtilization":
            assert type(out) is list
            assert all(type(s) is pynvml.c_nvmlProcessUtilizationSample_t for s in out)
            samples += len(out)
    assert structs > 0
    assert processes > 0
    assert samples > 0


def test_return_shapes_follow_pynvml() -> None:
    shapes = {
        "nvmlDeviceGetPowerManagementLimitConstraints": list,
        "nvmlDeviceGetMigMode": list,
        "nvmlDeviceGetEncoderUtilization": list,
        "nvmlDeviceGetDecoderUtilization": list,
        "nvmlDeviceGetRemappedRows": tuple,
        "nvmlDeviceGetCudaComputeCapability": tuple,
        "nvmlDeviceGetRetiredPages": list,
        "nvmlDeviceGetName": str,
        "nvmlDeviceGetUUID": str,
        "nvmlSystemGetDriverVersion": str,
        "nvmlDeviceGetPowerUsage": int,
        "nvmlDeviceGetTotalEnergyConsumption": int,
        "nvmlDeviceGetIndex": int,
        "nvmlDeviceGetSupportedEventTypes": int,
        "nvmlDeviceGetMaxMigDeviceCount": int,
        "nvmlDeviceGetGpuInstanceId": int,
        "nvmlDeviceIsMigDeviceHandle": pynvml.c_uint,
        "nvmlEventSetCreate": pynvml.c_nvmlEventSet_t,
        "nvmlGpmSampleAlloc": pynvml.c_nvmlGpmSample_t,
        "nvmlGpmSampleGet": pynvml.c_nvmlGpmSample_t,
    }
    seen = set()
    for name, out in OUTCOMES:
        if name in shapes and not isinstance(out, BaseException):
            seen.add(name)
            assert type(out) is shapes[name], (name, out)
            if isinstance(out, (list, tuple)) and name != "nvmlDeviceGetRetiredPages":
                assert len(out) == {"nvmlDeviceGetRemappedRows": 4}.get(name, 2)
    assert seen == set(shapes) - {"nvmlDeviceGetRetiredPages"}  # NOT_SUPPORTED on every model


def test_a_structure_passed_by_value_where_nvml_h_wants_a_pointer_fails_loudly() -> None:
    """On a real H200, the fabric-info call with its structure by value crashed the process
    (../shared/reference/h200/README.md); the fake refuses it instead of answering."""
    nv = FakeNvml(load_scenario("h200-8"))
    nv.nvmlInit()
    handle = nv.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(TypeError, match="expects a pointer to c_nvmlGpuFabricInfo_t"):
        nv.nvmlDeviceGetGpuFabricInfo(handle, nv.c_nvmlGpuFabricInfo_t())
    with pytest.raises(TypeError, match="would crash the process"):
        nv.nvmlDeviceGetGpuFabricInfo(handle, ctypes.byref(nv.c_nvmlMemory_t()))
    info = nv.c_nvmlGpuFabricInfo_t()
    assert nv.nvmlDeviceGetGpuFabricInfo(handle, ctypes.byref(info)) == nv.NVML_SUCCESS
    # the HGX H200 captures: "State: Completed, Status: Success, CliqueId: 0"
    assert (info.state, info.status, info.cliqueId) == (nv.NVML_GPU_FABRIC_STATE_COMPLETED, 0, 0)


def test_constants_and_classes_are_pynvml_s_and_unimplemented_functions_are_absent() -> None:
    nv = FakeNvml(load_scenario("h100-8"))
    assert nv.NVML_TEMPERATURE_GPU == pynvml.NVML_TEMPERATURE_GPU
    assert nv.NVMLError_NotSupported is pynvml.NVMLError_NotSupported
    assert nv.nvmlMemory_v2 == pynvml.nvmlMemory_v2
    assert nv.nvmlClocksEventReasonSwPowerCap == pynvml.nvmlClocksEventReasonSwPowerCap
    assert nv.c_nvmlMemory_v2_t is pynvml.c_nvmlMemory_v2_t
    unimplemented = ["nvmlDeviceGetHandleByUUID", "nvmlDeviceSetPowerManagementLimit"]
    unimplemented += ["nvmlGpmSetStreamingEnabled", "nvmlEventSetWait_v3"]
    for name in unimplemented:
        assert inspect.isfunction(getattr(pynvml, name))
        assert not hasattr(nv, name)
    with pytest.raises(AttributeError):
        _ = nv.NVML_NO_SUCH_CONSTANT
    with pytest.raises(AttributeError):
        _ = nv._nvmlGetFunctionPointer
