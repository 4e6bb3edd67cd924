"""Values NVML serves through `nvmlDeviceGetFieldValues`: many fields in one call per GPU.

Each element carries its own return code, so one unsupported field never costs the others; a
field NVML answers NOT_SUPPORTED for is dropped from this GPU's later requests.
"""

from __future__ import annotations

from typing import Any

from agent.hw import GpuDevice, GpuReading
from agent.hw.nvml import NVMLError, NvmlGateway, error_name

KIB = 1024.0
FUNCTION = "nvmlDeviceGetFieldValues"


def _device_fields(nv: Any) -> dict[int, tuple[str, str]]:
    """Field id -> (reading attribute, key within it) for whole-device fields."""
    return {
        nv.NVML_FI_DEV_MEMORY_TEMP: ("temperature_celsius", "memory"),
        nv.NVML_FI_DEV_PCIE_REPLAY_COUNTER: ("pcie_replays", ""),
        nv.NVML_FI_DEV_ECC_SBE_AGG_TOTAL: ("ecc_errors", "corrected"),
        nv.NVML_FI_DEV_ECC_DBE_AGG_TOTAL: ("ecc_errors", "uncorrected"),
        nv.NVML_FI_DEV_ECC_DBE_VOL_TOTAL: ("ecc_volatile_uncorrected", ""),
        nv.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION: ("recovery_action", ""),
    }


def _nvlink_error_fields(nv: Any) -> dict[int, str]:
    """NVLink error totals summed over lanes; CRC flit and CRC data errors both count as crc."""
    return {
        nv.NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL: "crc",
        nv.NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL: "crc",
        nv.NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL: "replay",
        nv.NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL: "recovery",
    }


def _request(gw: NvmlGateway, device: GpuDevice) -> list[tuple[int, int]]:
    nv = gw.nv
    wanted = [(fid, 0) for fid in (*_device_fields(nv), *_nvlink_error_fields(nv))]
    for link in range(device.nvlink_count):
        wanted.append((nv.NVML_FI_DEV_NVLINK_GET_STATE, link))
        wanted.append((nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, link))
        wanted.append((nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, link))
    return [f for f in wanted if not gw.is_unsupported(FUNCTION, (device.index, f))]


def field_number(nv: Any, element: Any) -> float:
    """The element's value as a number, read from the union member its valueType names."""
    members = {
        nv.NVML_VALUE_TYPE_DOUBLE: "dVal",
        nv.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
        nv.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
        nv.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
        nv.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
        nv.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
        nv.NVML_VALUE_TYPE_UNSIGNED_SHORT: "usVal",
    }
    return float(getattr(element.value, members.get(element.valueType, "ullVal")))


def read_fields(gw: NvmlGateway, device: GpuDevice, handle: Any, out: GpuReading) -> None:
    """Fill the field-value parts of `out` with one NVML call. Raises GpuGone/NvmlUnavailable."""
    request = _request(gw, device)
    if not request:
        return
    try:
        values = gw.call(FUNCTION, ("gpu", device.index), handle, request)
    except NVMLError:
        return
    if values is None:
        return
    nv = gw.nv
    partial_links = False
    for (fid, scope), element in zip(request, values, strict=False):
        code = element.nvmlReturn
        if code == nv.NVML_ERROR_NOT_SUPPORTED:
            gw.remember_unsupported(FUNCTION, (device.index, (fid, scope)))
        elif code != nv.NVML_SUCCESS:
            gw.count_error(FUNCTION, error_name(NVMLError(code)))
            partial_links = partial_links or scope > 0 or fid in _nvlink_error_fields(nv)
        else:
            _store(nv, out, fid, scope, field_number(nv, element))
    if partial_links:
        # A sum over links missing one link would look like a counter reset: leave it out.
        out.nvlink_bytes.clear()
        out.nvlink_errors.clear()


def _store(nv: Any, out: GpuReading, fid: int, scope: int, value: float) -> None:
    device_fields = _device_fields(nv)
    if fid in device_fields:
        attribute, key = device_fields[fid]
        if key:
            getattr(out, attribute)[key] = value
        else:
            setattr(out, attribute, int(value) if attribute == "recovery_action" else value)
        return
    errors = _nvlink_error_fields(nv)
    if fid in errors:
        out.nvlink_errors[errors[fid]] = out.nvlink_errors.get(errors[fid], 0.0) + value
    elif fid == nv.NVML_FI_DEV_NVLINK_GET_STATE:
        out.nvlink_up[scope] = bool(value)
    elif fid == nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX:
        out.nvlink_bytes["tx"] = out.nvlink_bytes.get("tx", 0.0) + value * KIB
    elif fid == nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX:
        out.nvlink_bytes["rx"] = out.nvlink_bytes.get("rx", 0.0) + value * KIB
