"""NVML field values (nvmlDeviceGetFieldValues) of a fake GPU: which fields, in which types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.fake_device import FakeGpu

P = pynvml


def fill_field(gpu: FakeGpu, out: Any, t: float) -> None:
    """Fill one c_nvmlFieldValue_t (fieldId/scopeId set) as NVML does: its own nvmlReturn,
    NOT_SUPPORTED for a field this GPU or driver does not offer."""
    out.timestamp, out.latencyUsec = int(t * 1e6), 0
    entry = FIELDS.get(out.fieldId)
    if entry is None or (
        out.fieldId == P.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION and gpu.driver_major < 565
    ):  # absent from the <565 captures
        out.nvmlReturn = P.NVML_ERROR_NOT_SUPPORTED
        return
    if out.fieldId in PCIE_BYTES and (gpu.driver_major < 580 or gpu.model.architecture < HOPPER):
        # answered by a real H200 on driver 580.159.04 (docs/hardware-validation.md: no
        # nvmlDeviceGetPcieThroughput call was needed); not seen elsewhere, so not assumed
        out.nvmlReturn = P.NVML_ERROR_NOT_SUPPORTED
        return
    value_type, read = entry
    try:
        value = read(gpu, t, out.scopeId)
    except P.NVMLError as err:
        out.nvmlReturn = err.value
        return
    out.valueType, out.nvmlReturn = value_type, P.NVML_SUCCESS
    if value_type == _UINT:
        out.value.uiVal = value
    else:
        out.value.ullVal = value


_UINT, _ULL = P.NVML_VALUE_TYPE_UNSIGNED_INT, P.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
_CORRECTED, _UNCORRECTED = P.NVML_MEMORY_ERROR_TYPE_CORRECTED, P.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
# field id -> (value type, reader(gpu, t, scopeId)); NVLink throughput/state take the link as scope
FIELDS: dict[int, tuple[int, Callable[[FakeGpu, float, int], int]]] = {
    P.NVML_FI_DEV_MEMORY_TEMP: (_UINT, lambda g, t, s: g.memory_temperature(t)),
    P.NVML_FI_DEV_PCIE_REPLAY_COUNTER: (_UINT, lambda g, t, s: g.pcie_replays(t)),
    P.NVML_FI_DEV_ECC_SBE_AGG_TOTAL: (_ULL, lambda g, t, s: g.ecc_errors(t, _CORRECTED)),
    P.NVML_FI_DEV_ECC_DBE_AGG_TOTAL: (_ULL, lambda g, t, s: g.ecc_errors(t, _UNCORRECTED)),
    # Volatile counts start at driver load, which is the scenario's t=0: the same numbers here.
    P.NVML_FI_DEV_ECC_SBE_VOL_TOTAL: (_ULL, lambda g, t, s: g.ecc_errors(t, _CORRECTED)),
    P.NVML_FI_DEV_ECC_DBE_VOL_TOTAL: (_ULL, lambda g, t, s: g.ecc_errors(t, _UNCORRECTED)),
    P.NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL: (
        _ULL,
        lambda g, t, s: g.nvlink_errors(t, "crc_flit"),
    ),
    P.NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL: (
        _ULL,
        lambda g, t, s: g.nvlink_errors(t, "crc_data"),
    ),
    P.NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL: (
        _ULL,
        lambda g, t, s: g.nvlink_errors(t, "replay"),
    ),
    P.NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL: (
        _ULL,
        lambda g, t, s: g.nvlink_errors(t, "recovery"),
    ),
    P.NVML_FI_DEV_NVLINK_LINK_COUNT: (_UINT, lambda g, t, s: g.nvlink_count()),
    P.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX: (_ULL, lambda g, t, s: g.nvlink_kib(t, s, False)),
    P.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX: (_ULL, lambda g, t, s: g.nvlink_kib(t, s, True)),
    P.NVML_FI_DEV_NVLINK_GET_STATE: (_UINT, lambda g, t, s: g.nvlink_state(t, s)),
    P.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION: (_UINT, lambda g, t, s: g.recovery_action(t)),
    P.NVML_FI_DEV_PCIE_COUNT_TX_BYTES: (_ULL, lambda g, t, s: int(g.work.totals(t)[6])),
    P.NVML_FI_DEV_PCIE_COUNT_RX_BYTES: (_ULL, lambda g, t, s: int(g.work.totals(t)[7])),
}
PCIE_BYTES = frozenset({P.NVML_FI_DEV_PCIE_COUNT_TX_BYTES, P.NVML_FI_DEV_PCIE_COUNT_RX_BYTES})
HOPPER = P.NVML_DEVICE_ARCH_HOPPER
