"""6. Node and GPU detail, the GPU half: every GPU metric of the selected node, per GPU (their
links in `node_gpu_links.py`, their health in `node_gpu_health.py`)."""

from __future__ import annotations

from grafana.generator.panels import (
    Json,
    Query,
    bargauge,
    state_timeline,
    timeseries,
    value_map,
)
from grafana.generator.promql import GPU, sel
from grafana.generator.tables import table

PER_GPU = "GPU {{gpu}}"
NEEDS_DETAIL = "Needs collectors.gpu.detail: true"
RATE = "[$__rate_interval]"


def g(metric: str, extra: str = "") -> str:
    """`metric` on the selected GPUs."""
    return sel(metric, GPU, extra)


def per_gpu(metric: str, suffix: str = "", extra: str = "") -> Query:
    return Query(g(metric, extra), legend=f"{PER_GPU}{suffix}")


def rate(metric: str) -> str:
    return f"rate({g(metric)}{RATE})"


def activity_panels() -> list[Json]:
    """Utilisation and GPM's SM, tensor, occupancy, DRAM and engine ratios."""
    return [
        timeseries(
            "Utilisation",
            "NVML utilisation: the share of time a kernel ran.",
            "percentunit",
            per_gpu("suanli_gpu_utilization_ratio"),
            w=8,
            max_=1,
        ),
        timeseries(
            "SM and tensor activity",
            "GPM: share of SMs busy and of time tensor cores were busy (Hopper and newer).",
            "percentunit",
            per_gpu("suanli_gpu_sm_active_ratio", " SM"),
            per_gpu("suanli_gpu_tensor_active_ratio", " tensor"),
            w=8,
            max_=1,
        ),
        timeseries(
            "Occupancy, DRAM and graphics engine",
            "GPM: resident warps over the "
            "maximum, memory bandwidth used over peak, graphics/compute engine active.",
            "percentunit",
            per_gpu("suanli_gpu_sm_occupancy_ratio", " occupancy"),
            per_gpu("suanli_gpu_dram_active_ratio", " DRAM"),
            per_gpu("suanli_gpu_graphics_engine_active_ratio", " engine"),
            w=8,
            max_=1,
        ),
    ]


def engine_panels() -> list[Json]:
    """Activity of the SM pipes, the memory controller and the video engines."""
    return [
        timeseries(
            "Pipe activity",
            "GPM: share of time each SM pipe (FP64, FP32, FP16) was busy. Needs "
            "collectors.gpu.detail: true (Delivered FLOP/s by precision has their work).",
            "percentunit",
            per_gpu("suanli_gpu_pipe_active_ratio", " {{pipe}}"),
            w=8,
            max_=1,
            no_value=NEEDS_DETAIL,
        ),
        timeseries(
            "Memory controller and video engines",
            "Share of time device memory was "
            "read or written, and the video encoder and decoder were busy.",
            "percentunit",
            per_gpu("suanli_gpu_memory_controller_utilization_ratio", " memory"),
            per_gpu("suanli_gpu_encoder_utilization_ratio", " encoder"),
            per_gpu("suanli_gpu_decoder_utilization_ratio", " decoder"),
            w=8,
            max_=1,
        ),
    ]


def delivered_panels() -> list[Json]:
    """Work delivered per precision, or why a GPU has no such counter."""
    return [
        timeseries(
            "Delivered FLOP/s by precision",
            "Work each GPU delivered, per precision GPM can tell (bf16: 16-bit tensor and "
            "vector; int8: integer operations/s): pipe activity x peak x held / max SM clock "
            "(docs/delivered-compute.md). Hopper and newer.",
            "flops",
            Query(rate("suanli_gpu_delivered_flops_total"), legend=f"{PER_GPU} {{{{precision}}}}"),
            w=8,
        ),
        table(
            "GPUs without delivered FLOP/s",
            "Why a GPU has no delivered-work counter: gpm_off, gpm_unsupported (before "
            "Hopper), unknown_model (no datasheet peak), unknown_sm_count, no_clock, "
            "no_activity (no GPM answer or no work yet).",
            "none",
            Query(g("suanli_gpu_delivered_flops_unavailable")),
            w=8,
            hide=("Value",),
        ),
    ]


def memory_power_panels() -> list[Json]:
    return [
        timeseries(
            "Framebuffer memory",
            "Memory in use, reserved by the driver, and installed.",
            "bytes",
            per_gpu("suanli_gpu_memory_used_bytes", " used"),
            per_gpu("suanli_gpu_memory_reserved_bytes", " reserved"),
            per_gpu("suanli_gpu_memory_total_bytes", " total"),
            w=8,
        ),
        timeseries(
            "Power and limits",
            "Board power and its power limits (enforced, default; min and max with detail).",
            "watt",
            per_gpu("suanli_gpu_power_watts"),
            per_gpu("suanli_gpu_power_limit_watts", " {{limit}} limit"),
            w=8,
        ),
        timeseries(
            "Power from the energy counter",
            "Mean power between scrapes from the board's hardware energy counter.",
            "watt",
            Query(rate("suanli_gpu_energy_joules_total"), legend=PER_GPU),
            w=8,
        ),
        bargauge(
            "Peak FLOP/s by precision",
            "Dense datasheet peak of the selected GPUs' "
            "models, by precision (the most of any selected GPU).",
            "flops",
            Query(
                f"max by (precision) ({g('suanli_gpu_peak_flops')})",
                legend="{{precision}}",
                instant=True,
            ),
        ),
    ]


def thermal_panels() -> list[Json]:
    """Temperatures against their thresholds, and the fans."""
    return [
        timeseries(
            "Temperatures and thresholds",
            "GPU and memory temperature. The slowdown and shutdown threshold lines need "
            "collectors.gpu.detail: true in the agent's configuration (off by default).",
            "celsius",
            per_gpu("suanli_gpu_temperature_celsius", " {{sensor}}"),
            Query(
                f"max by (threshold) ({g('suanli_gpu_temperature_threshold_celsius')})",
                legend="{{threshold}} threshold",
            ),
            w=8,
            min_=None,
        ),
        timeseries(
            "Fan speed",
            "Intended fan speed. Empty on passively cooled boards (SXM, most data-center "
            "PCIe cards): NVML reports no fan there, whatever the configuration.",
            "percentunit",
            per_gpu("suanli_gpu_fan_speed_ratio"),
            w=8,
            max_=1,
            no_value="No fan (passively cooled board)",
        ),
    ]


def clock_panels() -> list[Json]:
    """Clocks against their maxima, and the performance state."""
    pstates = value_map({n: (f"P{n}", "green" if n == 0 else "blue") for n in range(16)})
    return [
        timeseries(
            "Clocks",
            "Current SM and memory clocks. The maximum-clock lines need collectors.gpu.detail: "
            "true in the agent's configuration (off by default).",
            "hertz",
            per_gpu("suanli_gpu_clock_hertz", " {{clock}}"),
            Query(f"max by (clock) ({g('suanli_gpu_clock_max_hertz')})", legend="max {{clock}}"),
            w=8,
        ),
        state_timeline(
            "Performance state",
            "P-state of each GPU: P0 is full speed.",
            "none",
            per_gpu("suanli_gpu_performance_state"),
            mappings=pstates,
            w=8,
        ),
    ]


def throttle_panels() -> list[Json]:
    """Time with clocks held down, and why."""
    return [
        timeseries(
            "Throttled time",
            "Share of time clocks were held down, by reason (power "
            "cap, thermal; the other reasons with detail).",
            "percentunit",
            Query(rate("suanli_gpu_throttle_seconds_total"), legend=f"{PER_GPU} {{{{reason}}}}"),
            w=8,
        ),
        timeseries(
            "Clock event reasons",
            "GPUs whose clocks each reason holds down now. Needs collectors.gpu.detail: true in "
            "the agent's configuration (off by default); Throttled time has the main reasons.",
            "none",
            Query(f"sum by (reason) ({g('suanli_gpu_clock_event_active')})", legend="{{reason}}"),
            w=8,
            no_value=NEEDS_DETAIL,
        ),
    ]


def gpu_panels() -> list[Json]:
    """The GPU rows up to the links (node_gpu_links.py), in dashboard order."""
    return [
        *activity_panels(),
        *engine_panels(),
        *delivered_panels(),
        *memory_power_panels(),
        *thermal_panels(),
        *clock_panels(),
        *throttle_panels(),
    ]
