"""The pynvml PCIe-traffic and reliability functions of FakeNvml: PCIe throughput, retired pages,
row remapping, ECC counters, NVSwitch fabric state, NVLink state and field values."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.fake_calls import FakeNvmlBase, device
from suanli_sim.fake_device import FakeGpu, fail
from suanli_sim.fake_fields import fill_field

P = pynvml


class ReliabilityApi(FakeNvmlBase):
    @device
    def nvmlDeviceGetPcieThroughput(self, device: FakeGpu, counter: int) -> int:
        tick = device.tick(self.now())
        if counter == P.NVML_PCIE_UTIL_TX_BYTES:
            return tick.pcie_tx_kbs
        if counter == P.NVML_PCIE_UTIL_RX_BYTES:
            return tick.pcie_rx_kbs
        fail(P.NVML_ERROR_INVALID_ARGUMENT)

    @device
    def nvmlDeviceGetRetiredPages(self, device: FakeGpu, sourceFilter: int) -> list[int]:
        if not device.model.retired_pages:  # "Retired Pages: N/A"
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        return []

    @device
    def nvmlDeviceGetRetiredPagesPendingStatus(self, device: FakeGpu) -> int:
        if not device.model.retired_pages:  # "Pending Page Blacklist: N/A"
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        return int(P.NVML_FEATURE_DISABLED)

    @device
    def nvmlDeviceGetRemappedRows(self, device: FakeGpu) -> tuple[int, int, int, int]:
        return device.remapped_rows(self.now())

    @device
    def nvmlDeviceGetTotalEccErrors(self, handle: FakeGpu, errorType: int, counterType: int) -> int:
        if counterType not in (P.NVML_VOLATILE_ECC, P.NVML_AGGREGATE_ECC):
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        return handle.ecc_errors(self.now(), errorType)  # volatile == aggregate: no reboots

    @device
    def nvmlDeviceGetGpuFabricInfo(self, device: FakeGpu, gpuFabricInfo: Any) -> int:
        """Fills the structure `gpuFabricInfo` points to. pynvml passes the argument straight
        to C, which expects a pointer: a structure passed by value crashed a real H200's
        process (segfault), so the fake refuses it loudly instead of accepting it."""
        info = _pointed_to(gpuFabricInfo, P.c_nvmlGpuFabricInfo_t, "nvmlDeviceGetGpuFabricInfo")
        info.state, info.status = device.fabric(self.now())
        info.cliqueId = 0
        return int(P.NVML_SUCCESS)

    @device
    def nvmlDeviceGetNvLinkState(self, device: FakeGpu, link: int) -> int:
        return device.nvlink_state(self.now(), link)

    @device
    def nvmlDeviceGetFieldValues(self, handle: FakeGpu, fieldIds: Sequence[Any]) -> Any:
        t = self.now()
        values = (P.c_nvmlFieldValue_t * len(fieldIds))()
        for i, field in enumerate(fieldIds):
            try:
                (values[i].fieldId, values[i].scopeId) = field
            except TypeError:
                values[i].fieldId = field
            fill_field(handle, values[i], t)
        return values


def _pointed_to(argument: Any, struct: type, function: str) -> Any:
    """The structure a ctypes pointer or byref() refers to; TypeError for anything else
    (on a real driver, a structure by value or a wrong type corrupts memory or crashes)."""
    target = getattr(argument, "_obj", None)  # ctypes.byref(...)
    if target is None and isinstance(argument, ctypes._Pointer):
        target = argument.contents
    if not isinstance(target, struct):
        raise TypeError(
            f"{function}: nvml.h expects a pointer to {struct.__name__}, got "
            f"{type(argument).__name__}: on a real driver this call would crash the process"
        )
    return target
