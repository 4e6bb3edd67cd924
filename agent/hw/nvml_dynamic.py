"""One cycle's readings of one GPU, in base units; one failing field never fails the GPU."""

from __future__ import annotations

from typing import Any

from agent.hw import GpuDevice, GpuReading
from agent.hw.nvml import (
    CLOCK_EVENT_REASONS,
    CLOCKS,
    NVML,
    VIOLATION_POLICIES,
    NVMLError,
    NvmlGateway,
)
from agent.hw.nvml_fields import read_fields
from agent.hw.nvml_simple import SIMPLE_READS
from agent.hw.nvml_static import MHZ

PERCENT = 100.0
PCIE_SAMPLED = (("tx", NVML.NVML_PCIE_UTIL_TX_BYTES), ("rx", NVML.NVML_PCIE_UTIL_RX_BYTES))
PCIE_KB = 1024.0  # NVML reports PCIe throughput in KB/s, with KB = 1024 bytes
NANOSECONDS = 1e9


class _Reader:
    """Reads one GPU, counting answered calls so a GPU answering nothing reads as down."""

    def __init__(self, gw: NvmlGateway, device: GpuDevice, handle: Any) -> None:
        self.gw = gw
        self.nv = gw.nv
        self.key = ("gpu", device.index)
        self.handle = handle
        self.answered = 0
        self.failed = 0

    def get(self, function: str, *args: Any, sub: object = None) -> Any:
        key = self.key if sub is None else (self.key, sub)
        try:
            value = self.gw.call(function, key, self.handle, *args)
        except NVMLError:
            self.failed += 1
            return None
        if value is not None or not self.gw.is_unsupported(function, key):
            self.answered += 1
        return value


def read_gpu(gw: NvmlGateway, device: GpuDevice, handle: Any) -> GpuReading:
    """Read every dynamic value of one GPU. Raises GpuGone or NvmlUnavailable."""
    r = _Reader(gw, device, handle)
    out = GpuReading(device=device)
    _utilisation_and_memory(r, out)
    _power(r, out)
    _thermal_and_clocks(r, out)
    read_fields(gw, device, handle, out)  # before PCIe: its byte counters spare a 20 ms sample
    _pcie_and_reliability(r, out)
    _simple(r, out)
    if r.answered == 0 and r.failed > 0:
        out = GpuReading(device=device, up=False)
    return out


def _simple(r: _Reader, out: GpuReading) -> None:
    for read in SIMPLE_READS:
        answer = r.get(read.function, *read.args)
        if answer is not None:
            out.values.update((key, convert(answer)) for key, convert in read.values.items())


def _utilisation_and_memory(r: _Reader, out: GpuReading) -> None:
    util = r.get("nvmlDeviceGetUtilizationRates")
    if util is not None:
        out.utilization_ratio = util.gpu / PERCENT
        out.memory_controller_utilization_ratio = util.memory / PERCENT
    try:
        mem = r.gw.call_versioned(
            [
                ("nvmlDeviceGetMemoryInfo", {"version": r.nv.nvmlMemory_v2}),
                ("nvmlDeviceGetMemoryInfo", {}),
            ],
            r.key,
            r.handle,
        )
    except NVMLError:
        mem = None
        r.failed += 1
    if mem is not None:
        r.answered += 1
        out.memory_total_bytes = float(mem.total)
        out.memory_used_bytes = float(mem.used)
        reserved = getattr(mem, "reserved", None)
        out.memory_reserved_bytes = None if reserved is None else float(reserved)
    encoder = r.get("nvmlDeviceGetEncoderUtilization")
    out.encoder_utilization_ratio = None if encoder is None else encoder[0] / PERCENT
    decoder = r.get("nvmlDeviceGetDecoderUtilization")
    out.decoder_utilization_ratio = None if decoder is None else decoder[0] / PERCENT


def _power(r: _Reader, out: GpuReading) -> None:
    power = r.get("nvmlDeviceGetPowerUsage")
    out.power_watts = None if power is None else power / 1000.0
    limit = r.get("nvmlDeviceGetEnforcedPowerLimit")
    out.power_limit_enforced_watts = None if limit is None else limit / 1000.0
    energy = r.get("nvmlDeviceGetTotalEnergyConsumption")
    out.energy_joules = None if energy is None else energy / 1000.0
    fan = r.get("nvmlDeviceGetFanSpeed")
    out.fan_speed_ratio = None if fan is None else fan / PERCENT
    pstate = r.get("nvmlDeviceGetPerformanceState")
    # 32 is NVML_PSTATE_UNKNOWN: absent, not a state
    out.performance_state = None if pstate is None or pstate >= 32 else int(pstate)


def _thermal_and_clocks(r: _Reader, out: GpuReading) -> None:
    temp = r.get("nvmlDeviceGetTemperature", r.nv.NVML_TEMPERATURE_GPU)
    if temp is not None:
        out.temperature_celsius["gpu"] = float(temp)
    for name, kind in CLOCKS.items():
        mhz = r.get("nvmlDeviceGetClockInfo", kind, sub=name)
        if mhz is not None:
            out.clocks_hertz[name] = float(mhz) * MHZ
    try:
        mask = r.gw.call_versioned(
            [
                ("nvmlDeviceGetCurrentClocksEventReasons", {}),
                ("nvmlDeviceGetCurrentClocksThrottleReasons", {}),
            ],
            r.key,
            r.handle,
        )
    except NVMLError:
        mask = None
    if mask is not None:
        out.clock_event_reasons = {
            name: bool(int(mask) & bit) for name, bit in CLOCK_EVENT_REASONS.items()
        }
    for name, policy in VIOLATION_POLICIES.items():
        violation = r.get("nvmlDeviceGetViolationStatus", policy, sub=name)
        if violation is not None:
            out.throttle_seconds[name] = violation.violationTime / NANOSECONDS


def _pcie_and_reliability(r: _Reader, out: GpuReading) -> None:
    # Without byte counters, fall back to NVML's throughput call, which samples for 20 ms.
    sampled = () if {"tx", "rx"} <= out.pcie_bytes.keys() else PCIE_SAMPLED
    for name, counter in sampled:
        kbps = r.get("nvmlDeviceGetPcieThroughput", counter, sub=name)
        if kbps is not None:
            out.pcie_throughput_bytes_per_second[name] = kbps * PCIE_KB
    out.pcie_link_generation = r.get("nvmlDeviceGetCurrPcieLinkGeneration")
    out.pcie_link_width = r.get("nvmlDeviceGetCurrPcieLinkWidth")
    causes = (
        ("single_bit", r.nv.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS),
        ("double_bit", r.nv.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR),
    )
    for name, cause in causes:
        pages = r.get("nvmlDeviceGetRetiredPages", cause, sub=name)
        if pages is not None:
            out.retired_pages[name] = float(len(pages))
    rows = r.get("nvmlDeviceGetRemappedRows")
    if rows is not None:
        corrected, uncorrected, pending, failed = rows
        out.remapped_rows = {"correctable": float(corrected), "uncorrectable": float(uncorrected)}
        out.row_remap_state = {"pending": float(bool(pending)), "failed": float(bool(failed))}
