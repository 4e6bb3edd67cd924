"""C calls whose memory does more than receive an answer: versioned structures read before they
are written, arrays sized by a count the caller passes (asked first with NULL, as pynvml does),
structures the fake fills in place, and event data carrying a handle."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.cabi.marshal import Marshal, Outcome, write

__all__ = ["FAKE_NAMES", "SPECIAL"]

P = pynvml
Adapter = Callable[[Marshal, Any, tuple[Any, ...]], None]

# Library symbols answered by a fake function under pynvml's (unversioned) name.
FAKE_NAMES = {
    "nvmlInitWithFlags": "nvmlInit",
    "nvmlInit_v2": "nvmlInit",
    "nvmlDeviceGetCount_v2": "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex_v2": "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetComputeRunningProcesses_v3": "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetMemoryInfo_v2": "nvmlDeviceGetMemoryInfo",
}


def _param(m: Marshal, function: str, index: int) -> Any:
    return m.header.prototype(function).params[index]


def _struct_at(m: Marshal, ctype: str, address: int | None) -> Any:
    if not address:
        raise Outcome(P.NVML_ERROR_INVALID_ARGUMENT, "NULL structure pointer")
    return m.header.layout(ctype).from_address(address)


def init(m: Marshal, fake: Any, values: tuple[Any, ...]) -> None:
    fake.nvmlInit()


def memory_v2(m: Marshal, fake: Any, values: tuple[Any, ...]) -> None:
    device, address = values
    version = _struct_at(m, "nvmlMemory_v2_t", address).version
    answer = fake.nvmlDeviceGetMemoryInfo(m.handle_in("nvmlDevice_t", device), version=version)
    name = "nvmlDeviceGetMemoryInfo_v2"
    write(m, name, _param(m, name, 1), address, answer)


def fabric(m: Marshal, fake: Any, values: tuple[Any, ...]) -> None:
    device, address = values
    _struct_at(m, "nvmlGpuFabricInfo_t", address)
    pointer = ctypes.cast(address, ctypes.POINTER(P.c_nvmlGpuFabricInfo_t))
    fake.nvmlDeviceGetGpuFabricInfo(m.handle_in("nvmlDevice_t", device), pointer)


def fabric_v(m: Marshal, fake: Any, values: tuple[Any, ...]) -> None:
    """The versioned call fills the fields its structure's version has (v2 or v3)."""
    device, address = values
    version = ctypes.c_uint.from_address(address).value if address else 0
    layout = {
        (ctypes.sizeof(m.header.layout(f"nvmlGpuFabricInfo_v{v}_t")) | v << 24): v for v in (2, 3)
    }.get(version)
    if layout is None:
        raise Outcome(P.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
    plain = P.c_nvmlGpuFabricInfo_t()
    fake.nvmlDeviceGetGpuFabricInfo(m.handle_in("nvmlDevice_t", device), ctypes.pointer(plain))
    info = _struct_at(m, f"nvmlGpuFabricInfo_v{layout}_t", address)
    info.state, info.status, info.cliqueId = plain.state, plain.status, plain.cliqueId
    ctypes.memmove(info.clusterUuid, plain.clusterUuid, len(plain.clusterUuid))


def field_values(m: Marshal, fake: Any, values: tuple[Any, ...]) -> None:
    device, count, address = values
    if count <= 0 or not address:
        raise Outcome(P.NVML_ERROR_INVALID_ARGUMENT)
    array = (m.header.layout("nvmlFieldValue_t") * count).from_address(address)
    ids = [(array[i].fieldId, array[i].scopeId) for i in range(count)]
    answer = fake.nvmlDeviceGetFieldValues(m.handle_in("nvmlDevice_t", device), ids)
    for i in range(count):
        ctypes.memmove(ctypes.byref(array[i]), ctypes.byref(answer[i]), ctypes.sizeof(array[i]))


def _fill_array(
    m: Marshal, ctype: str, count_at: int | None, array_at: int | None, rows: list[Any]
) -> None:
    """NVML's two-step array protocol: too small (or NULL) -> the count needed and
    INSUFFICIENT_SIZE; else the rows and their count."""
    if not count_at:
        raise Outcome(P.NVML_ERROR_INVALID_ARGUMENT)
    count = ctypes.c_uint.from_address(count_at)
    room, count.value = count.value, len(rows)
    if not rows:
        return
    if not array_at or room < len(rows):
        raise Outcome(P.NVML_ERROR_INSUFFICIENT_SIZE)
    row_type: Any = m.header.layout(ctype) if ctype else ctypes.c_ulonglong
    array = (row_type * len(rows)).from_address(array_at)
    for i, row in enumerate(rows):
        if ctype:
            ctypes.memmove(ctypes.byref(array[i]), ctypes.byref(row), ctypes.sizeof(row_type))
        else:
            array[i] = int(row)


def processes(m: Marshal, fake: Any, values: tuple[Any, ...], name: str) -> None:
    device, count_at, array_at = values
    na = P.NVML_VALUE_NOT_AVAILABLE_ulonglong.value
    rows = []
    for proc in getattr(fake, name)(m.handle_in("nvmlDevice_t", device)):
        used = na if proc.usedGpuMemory is None else proc.usedGpuMemory
        row = m.header.layout("nvmlProcessInfo_t")(
            proc.pid, used, proc.gpuInstanceId, proc.computeInstanceId
        )
        rows.append(row)
    _fill_array(m, "nvmlProcessInfo_t", count_at, array_at, rows)


def process_utilization(m: Marshal, fake: Any, values: tuple[Any, ...]) -> None:
    device, array_at, count_at, last_seen = values
    rows = fake.nvmlDeviceGetProcessUtilization(m.handle_in("nvmlDevice_t", device), last_seen)
    _fill_array(m, "nvmlProcessUtilizationSample_t", count_at, array_at, list(rows))


def retired_pages(m: Marshal, fake: Any, values: tuple[Any, ...]) -> None:
    device, cause, count_at, array_at = values
    rows = fake.nvmlDeviceGetRetiredPages(m.handle_in("nvmlDevice_t", device), cause)
    _fill_array(m, "", count_at, array_at, list(rows))


def event_wait(m: Marshal, fake: Any, values: tuple[Any, ...]) -> None:
    event_set, address, timeout_ms = values
    data = _struct_at(m, "nvmlEventData_t", address)
    answer = fake.nvmlEventSetWait_v2(m.handle_in("nvmlEventSet_t", event_set), timeout_ms)
    data.device = m.handle_out(answer.device)
    data.eventType, data.eventData = answer.eventType, answer.eventData
    data.gpuInstanceId, data.computeInstanceId = answer.gpuInstanceId, answer.computeInstanceId


def gpm_metrics(m: Marshal, fake: Any, values: tuple[Any, ...]) -> None:
    (address,) = values
    _struct_at(m, "nvmlGpmMetricsGet_t", address)
    fake.nvmlGpmMetricsGet(P.c_nvmlGpmMetricsGet_t.from_address(address))


def gpm_support(m: Marshal, fake: Any, values: tuple[Any, ...]) -> None:
    device, address = values
    support = _struct_at(m, "nvmlGpmSupport_t", address)
    if support.version != m.header.version_of("nvmlGpmSupport_t"):
        raise Outcome(P.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
    answer = fake.nvmlGpmQueryDeviceSupport(m.handle_in("nvmlDevice_t", device))
    support.isSupportedDevice = answer.isSupportedDevice


SPECIAL: dict[str, Adapter] = {
    "nvmlInitWithFlags": init,
    "nvmlInit_v2": init,
    "nvmlDeviceGetMemoryInfo_v2": memory_v2,
    "nvmlDeviceGetGpuFabricInfo": fabric,
    "nvmlDeviceGetGpuFabricInfoV": fabric_v,
    "nvmlDeviceGetFieldValues": field_values,
    "nvmlDeviceGetComputeRunningProcesses_v3": lambda m, f, v: processes(
        m, f, v, "nvmlDeviceGetComputeRunningProcesses"
    ),
    "nvmlDeviceGetComputeRunningProcesses_v2": lambda m, f, v: processes(
        m, f, v, "nvmlDeviceGetComputeRunningProcesses_v2"
    ),
    "nvmlDeviceGetProcessUtilization": process_utilization,
    "nvmlDeviceGetRetiredPages": retired_pages,
    "nvmlEventSetWait_v2": event_wait,
    "nvmlGpmMetricsGet": gpm_metrics,
    "nvmlGpmQueryDeviceSupport": gpm_support,
}
