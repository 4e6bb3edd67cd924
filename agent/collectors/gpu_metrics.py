"""The GPU metric families, declared once, each with how it is read off a `GpuReading`
(the building blocks are in `gpu_family.py`)."""

from __future__ import annotations

from collections.abc import Callable

from agent.collectors.gpu_family import (
    GPU_LABELS,
    GpuFamily,
    Values,
    counter,
    flags,
    gauge,
    keyed,
    one,
    split,
    value,
)
from agent.hw import GpuReading
from agent.metrics import MetricSpec

# Label values exported by default; the others only with `detail` (series budget: 600 per node).
DEFAULT_CLOCKS = frozenset({"sm", "memory"})
DEFAULT_THROTTLE_REASONS = frozenset({"power", "thermal"})


def _power_limits(r: GpuReading) -> Values:
    d = r.device
    return [
        (("enforced",), r.power_limit_enforced_watts),
        (("default",), d.power_limit_default_watts),
    ]


def _power_limit_range(r: GpuReading) -> Values:
    return [(("min",), r.device.power_limit_min_watts), (("max",), r.device.power_limit_max_watts)]


def _pcie_link(
    current: Callable[[GpuReading], int | None], maximum: Callable[[GpuReading], int | None]
) -> Callable[[GpuReading], Values]:
    def values(r: GpuReading) -> Values:
        cur, top = current(r), maximum(r)
        return [
            (("current",), None if cur is None else float(cur)),
            (("max",), None if top is None else float(top)),
        ]

    return values


def _nvlink_links(r: GpuReading) -> Values:
    if not r.nvlink_up:
        return []
    up = sum(1 for state in r.nvlink_up.values() if state)
    return [(("up",), float(up)), (("down",), float(len(r.nvlink_up) - up))]


UP = gauge("up", "1 when the last read of this GPU succeeded, 0 when it stopped answering.")

FAMILIES: tuple[GpuFamily, ...] = (
    GpuFamily(
        gauge(
            "utilization_ratio",
            "Fraction of the last sample period a kernel ran (NVML utilization.gpu).",
        ),
        one(lambda r: r.utilization_ratio),
    ),
    GpuFamily(
        gauge(
            "memory_controller_utilization_ratio",
            "Fraction of the last sample period device memory was read or written.",
        ),
        one(lambda r: r.memory_controller_utilization_ratio),
    ),
    GpuFamily(
        gauge("memory_used_bytes", "Framebuffer memory in use."),
        one(lambda r: r.memory_used_bytes),
    ),
    GpuFamily(
        gauge("memory_total_bytes", "Framebuffer memory installed, as NVML reports it."),
        one(lambda r: r.memory_total_bytes),
    ),
    GpuFamily(
        gauge("memory_reserved_bytes", "Framebuffer memory reserved by the driver and firmware."),
        one(lambda r: r.memory_reserved_bytes),
    ),
    GpuFamily(gauge("power_watts", "Power drawn by the board."), one(lambda r: r.power_watts)),
    GpuFamily(
        gauge(
            "power_limit_watts",
            "Power limits: enforced, default (and min, max with detail).",
            ("limit",),
        ),
        _power_limits,
        _power_limit_range,
    ),
    GpuFamily(
        counter(
            "energy_joules_total", "Energy consumed since the driver was loaded (hardware counter)."
        ),
        one(lambda r: r.energy_joules),
    ),
    GpuFamily(
        gauge("temperature_celsius", "Temperature by sensor.", ("sensor",)),
        keyed(lambda r: r.temperature_celsius),
    ),
    GpuFamily(
        gauge(
            "temperature_threshold_celsius",
            "Temperature thresholds of the board.",
            ("threshold",),
            detail=True,
        ),
        keyed(lambda r: dict(r.device.temperature_thresholds_celsius)),
    ),
    GpuFamily(
        gauge(
            "fan_speed_ratio",
            "Intended fan speed as a fraction of maximum (absent on passively cooled boards).",
        ),
        one(lambda r: r.fan_speed_ratio),
    ),
    GpuFamily(
        gauge(
            "clock_hertz",
            "Current clock: sm, memory (and graphics, video with detail).",
            ("clock",),
        ),
        split(lambda r: r.clocks_hertz, DEFAULT_CLOCKS),
        split(lambda r: r.clocks_hertz, DEFAULT_CLOCKS, detail=True),
    ),
    GpuFamily(
        gauge("clock_max_hertz", "Maximum clock frequency by domain.", ("clock",), detail=True),
        keyed(lambda r: dict(r.device.max_clocks_hertz)),
    ),
    GpuFamily(
        gauge("performance_state", "Performance state: 0 is P0 (maximum) to 15 (minimum)."),
        one(lambda r: None if r.performance_state is None else float(r.performance_state)),
    ),
    GpuFamily(
        gauge(
            "clock_event_active",
            "1 while this reason is holding clocks down.",
            ("reason",),
            detail=True,
        ),
        flags(lambda r: r.clock_event_reasons),
    ),
    GpuFamily(
        counter(
            "throttle_seconds_total",
            "Time clocks were held down: power, thermal (the other reasons with detail).",
            ("reason",),
        ),
        split(lambda r: r.throttle_seconds, DEFAULT_THROTTLE_REASONS),
        split(lambda r: r.throttle_seconds, DEFAULT_THROTTLE_REASONS, detail=True),
    ),
    GpuFamily(
        gauge(
            "pcie_throughput_bytes_per_second",
            "PCIe throughput over NVML's last 20 ms window.",
            ("direction",),
        ),
        keyed(lambda r: r.pcie_throughput_bytes_per_second),
    ),
    GpuFamily(
        gauge("pcie_link_generation", "PCIe link generation, current and maximum.", ("link",)),
        _pcie_link(lambda r: r.pcie_link_generation, lambda r: r.device.pcie_max_generation),
    ),
    GpuFamily(
        gauge("pcie_link_width", "PCIe link width in lanes, current and maximum.", ("link",)),
        _pcie_link(lambda r: r.pcie_link_width, lambda r: r.device.pcie_max_width),
    ),
    GpuFamily(
        counter("pcie_replays_total", "PCIe replays (link-level retransmissions)."),
        one(lambda r: r.pcie_replays),
    ),
    GpuFamily(
        counter(
            "ecc_errors_total", "Memory ECC errors over the board's lifetime, by kind.", ("error",)
        ),
        keyed(lambda r: r.ecc_errors),
    ),
    GpuFamily(
        gauge("retired_pages", "Memory pages retired, by cause.", ("cause",)),
        keyed(lambda r: r.retired_pages),
    ),
    GpuFamily(
        gauge("remapped_rows", "Memory rows remapped, by kind of error.", ("kind",)),
        keyed(lambda r: r.remapped_rows),
    ),
    GpuFamily(
        gauge(
            "row_remap_state",
            "1 when a row remap is pending (reset needed) or has failed.",
            ("state",),
        ),
        keyed(lambda r: r.row_remap_state),
    ),
    GpuFamily(
        gauge(
            "recovery_action",
            "NVML recovery action: 0 none, 1 reset, 2 reboot, 3 drain P2P, 4 drain and reset.",
        ),
        one(lambda r: None if r.recovery_action is None else float(r.recovery_action)),
    ),
    GpuFamily(gauge("nvlink_links", "NVLink links by state.", ("state",)), _nvlink_links),
    GpuFamily(
        gauge("nvlink_up", "1 when this NVLink link is up.", ("link",), detail=True),
        lambda r: [((str(link),), float(up)) for link, up in sorted(r.nvlink_up.items())],
    ),
    GpuFamily(
        counter("nvlink_bytes_total", "NVLink data bytes, summed over links.", ("direction",)),
        keyed(lambda r: r.nvlink_bytes),
    ),
    GpuFamily(
        counter("nvlink_errors_total", "NVLink errors summed over links, by kind.", ("error",)),
        keyed(lambda r: r.nvlink_errors),
    ),
    GpuFamily(
        gauge(
            "encoder_utilization_ratio",
            "Fraction of time the video encoder was busy.",
            detail=True,
        ),
        one(lambda r: r.encoder_utilization_ratio),
    ),
    GpuFamily(
        gauge(
            "decoder_utilization_ratio",
            "Fraction of time the video decoder was busy.",
            detail=True,
        ),
        one(lambda r: r.decoder_utilization_ratio),
    ),
    GpuFamily(
        gauge(
            "bar1_used_bytes",
            "BAR1 memory in use: the window peers and NICs (GPUDirect RDMA) reach GPU memory by.",
            detail=True,
        ),
        value("bar1_used_bytes"),
    ),
    GpuFamily(
        gauge("bar1_total_bytes", "Size of the BAR1 window.", detail=True),
        value("bar1_total_bytes"),
    ),
)

INFO = MetricSpec(
    "suanli_gpu_info",
    "gauge",
    "Descriptive facts of a GPU (value 1); join on uuid.",
    (
        *GPU_LABELS,
        "model",
        "serial",
        "pci_bus_id",
        "driver_version",
        "vbios_version",
        "cuda_driver_version",
        "architecture",
        "compute_mode",
        "mig_mode",
    ),
)
