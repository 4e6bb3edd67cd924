"""Values NVML serves through `nvmlDeviceGetFieldValues`: many fields in one call per GPU.

Each element carries its own return code, so one unsupported field never costs the others; a
field NVML answers NOT_SUPPORTED for is dropped from this GPU's later requests.
"""

from __future__ import annotations

from typing import Any

from agent.hw import GpuDevice, GpuReading
from agent.hw.nvml import NVML, NVMLError, NvmlGateway
from agent.hw.nvml_errors import error_name

KIB = 1024.0
FUNCTION = "nvmlDeviceGetFieldValues"
P = NVML

# Field id -> (reading attribute, key within it; "" for a plain attribute), whole device.
DEVICE_FIELDS: dict[int, tuple[str, str]] = {
    P.NVML_FI_DEV_MEMORY_TEMP: ("temperature_celsius", "memory"),
    P.NVML_FI_DEV_PCIE_REPLAY_COUNTER: ("pcie_replays", ""),
    P.NVML_FI_DEV_ECC_SBE_AGG_TOTAL: ("ecc_errors", "corrected"),
    P.NVML_FI_DEV_ECC_DBE_AGG_TOTAL: ("ecc_errors", "uncorrected"),
    P.NVML_FI_DEV_ECC_DBE_VOL_TOTAL: ("ecc_volatile_uncorrected", ""),
    P.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION: ("recovery_action", ""),
    # cumulative PCIe bytes (driver 535+): a rate over the whole interval, without the 20 ms
    # blocking sample of nvmlDeviceGetPcieThroughput
    P.NVML_FI_DEV_PCIE_COUNT_TX_BYTES: ("pcie_bytes", "tx"),
    P.NVML_FI_DEV_PCIE_COUNT_RX_BYTES: ("pcie_bytes", "rx"),
}
# NVLink error totals summed over lanes; CRC flit and CRC data errors both count as crc.
NVLINK_ERROR_FIELDS: dict[int, str] = {
    P.NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL: "crc",
    P.NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL: "crc",
    P.NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL: "replay",
    P.NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL: "recovery",
}
NVLINK_BYTES_FIELDS = {
    P.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX: "tx",
    P.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX: "rx",
}
VALUE_MEMBERS = {
    P.NVML_VALUE_TYPE_DOUBLE: "dVal",
    P.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
    P.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
    P.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
    P.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
    P.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
    P.NVML_VALUE_TYPE_UNSIGNED_SHORT: "usVal",
}
_WHOLE_DEVICE = [(fid, 0) for fid in (*DEVICE_FIELDS, *NVLINK_ERROR_FIELDS)]


def _request(gw: NvmlGateway, device: GpuDevice) -> list[tuple[int, int]]:
    wanted = list(_WHOLE_DEVICE)
    for link in range(device.nvlink_count):
        wanted.append((P.NVML_FI_DEV_NVLINK_GET_STATE, link))
        wanted.extend((fid, link) for fid in NVLINK_BYTES_FIELDS)
    return [f for f in wanted if not gw.is_unsupported(FUNCTION, (device.index, f))]


def field_number(element: Any) -> float:
    """The element's value as a number, read from the union member its valueType names."""
    return float(getattr(element.value, VALUE_MEMBERS.get(element.valueType, "ullVal")))


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
    partial_links = False
    for (fid, scope), element in zip(request, values, strict=False):
        code = element.nvmlReturn
        if code == P.NVML_ERROR_NOT_SUPPORTED:
            gw.remember_unsupported(FUNCTION, (device.index, (fid, scope)))
        elif code != P.NVML_SUCCESS:
            gw.count_error(FUNCTION, error_name(NVMLError(code)))
            partial_links = partial_links or scope > 0 or fid in NVLINK_ERROR_FIELDS
        else:
            _store(out, fid, scope, field_number(element))
    if partial_links:
        # A sum over links missing one link would look like a counter reset: leave it out.
        out.nvlink_bytes.clear()
        out.nvlink_errors.clear()


def _store(out: GpuReading, fid: int, scope: int, value: float) -> None:
    if fid in DEVICE_FIELDS:
        attribute, key = DEVICE_FIELDS[fid]
        if key:
            getattr(out, attribute)[key] = value
        else:
            setattr(out, attribute, int(value) if attribute == "recovery_action" else value)
    elif fid in NVLINK_ERROR_FIELDS:
        kind = NVLINK_ERROR_FIELDS[fid]
        out.nvlink_errors[kind] = out.nvlink_errors.get(kind, 0.0) + value
    elif fid == P.NVML_FI_DEV_NVLINK_GET_STATE:
        out.nvlink_up[scope] = bool(value)
    elif fid in NVLINK_BYTES_FIELDS:
        direction = NVLINK_BYTES_FIELDS[fid]
        out.nvlink_bytes[direction] = out.nvlink_bytes.get(direction, 0.0) + value * KIB
