"""Static facts of a GPU, read once per device per NVML initialisation, in base units."""

from __future__ import annotations

from typing import Any

from agent.hw import GpuDevice
from agent.hw.nvml import CLOCKS, THRESHOLDS, NVMLError, NvmlGateway

MIB = 1024 * 1024
MHZ = 1_000_000.0

ARCHITECTURES = {
    2: "kepler",
    3: "maxwell",
    4: "pascal",
    5: "volta",
    6: "turing",
    7: "ampere",
    8: "ada",
    9: "hopper",
    10: "blackwell",
}
COMPUTE_MODES = {0: "default", 1: "exclusive_thread", 2: "prohibited", 3: "exclusive_process"}


def _optional(gw: NvmlGateway, function: str, key: object, *args: Any) -> Any:
    """A static query whose failure (other than a lost GPU) just leaves the fact unknown."""
    try:
        return gw.call(function, key, *args)
    except NVMLError:
        return None


def _watts(milliwatts: Any) -> float | None:
    return None if milliwatts is None else float(milliwatts) / 1000.0


def _mig_mode(gw: NvmlGateway, key: object, handle: Any) -> str:
    modes = _optional(gw, "nvmlDeviceGetMigMode", key, handle)
    if modes is None:
        return "n/a"
    return "enabled" if int(modes[0]) == gw.nv.NVML_DEVICE_MIG_ENABLE else "disabled"


def _nvlink_count(gw: NvmlGateway, key: object, handle: Any) -> int:
    nv = gw.nv
    values = _optional(
        gw, "nvmlDeviceGetFieldValues", key, handle, [nv.NVML_FI_DEV_NVLINK_LINK_COUNT]
    )
    if values is None or values[0].nvmlReturn != nv.NVML_SUCCESS:
        return 0
    return int(values[0].value.uiVal)


def _bus_id(gw: NvmlGateway, key: object, handle: Any) -> str:
    pci = gw.call_versioned(
        [("nvmlDeviceGetPciInfo_v3", {}), ("nvmlDeviceGetPciInfo", {})], key, handle
    )
    if pci is None:
        return ""
    bus_id = pci.busId
    return (bus_id.decode() if isinstance(bus_id, bytes) else str(bus_id)).lower()


def read_device(gw: NvmlGateway, index: int, handle: Any) -> GpuDevice:
    """Read every static fact of the GPU at `index`. Raises GpuGone if the GPU is lost."""
    key = ("gpu", index)
    limits = _optional(gw, "nvmlDeviceGetPowerManagementLimitConstraints", key, handle) or (
        None,
        None,
    )
    arch = _optional(gw, "nvmlDeviceGetArchitecture", key, handle)
    mode = _optional(gw, "nvmlDeviceGetComputeMode", key, handle)
    return GpuDevice(
        index=index,
        # NVML can answer NOT_SUPPORTED even here: a GPU still needs a stable identity
        uuid=gw.call("nvmlDeviceGetUUID", key, handle) or f"GPU-unknown-{index}",
        model=gw.call("nvmlDeviceGetName", key, handle) or "unknown",
        pci_bus_id=_bus_id(gw, key, handle),
        serial=_optional(gw, "nvmlDeviceGetSerial", key, handle),
        vbios_version=_optional(gw, "nvmlDeviceGetVbiosVersion", key, handle),
        architecture=None if arch is None else ARCHITECTURES.get(int(arch), "unknown"),
        compute_mode=None if mode is None else COMPUTE_MODES.get(int(mode), "unknown"),
        mig_mode=_mig_mode(gw, key, handle),
        power_limit_default_watts=_watts(
            _optional(gw, "nvmlDeviceGetPowerManagementDefaultLimit", key, handle)
        ),
        power_limit_min_watts=_watts(limits[0]),
        power_limit_max_watts=_watts(limits[1]),
        temperature_thresholds_celsius=_thresholds(gw, key, handle),
        max_clocks_hertz=_max_clocks(gw, key, handle),
        pcie_max_generation=_optional(gw, "nvmlDeviceGetMaxPcieLinkGeneration", key, handle),
        pcie_max_width=_optional(gw, "nvmlDeviceGetMaxPcieLinkWidth", key, handle),
        nvlink_count=_nvlink_count(gw, key, handle),
    )


def _thresholds(gw: NvmlGateway, key: object, handle: Any) -> dict[str, float]:
    found: dict[str, float] = {}
    for name, kind in THRESHOLDS.items():
        value = _optional(gw, "nvmlDeviceGetTemperatureThreshold", (key, name), handle, kind)
        if value:  # NVML reports 0 for a threshold the board does not define
            found[name] = float(value)
    return found


def _max_clocks(gw: NvmlGateway, key: object, handle: Any) -> dict[str, float]:
    found: dict[str, float] = {}
    for name, kind in CLOCKS.items():
        value = _optional(gw, "nvmlDeviceGetMaxClockInfo", (key, name), handle, kind)
        if value:
            found[name] = float(value) * MHZ
    return found
