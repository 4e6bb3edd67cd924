"""6. Node and GPU detail, the GPU half: every GPU metric of the selected node, per GPU."""

from __future__ import annotations

from grafana.generator.panels import (
    Json,
    Query,
    bargauge,
    state_timeline,
    timeseries,
    value_map,
)
from grafana.generator.promql import GPU, NODE, sel
from grafana.generator.tables import table

PER_GPU = "GPU {{gpu}}"
NEEDS_DETAIL = "Needs collectors.gpu.detail: true"
RATE = "[$__rate_interval]"
OK_FAILED = value_map({0: ("no", "green"), 1: ("yes", "red")})


def g(metric: str, extra: str = "") -> str:
    """`metric` on the selected GPUs."""
    return sel(metric, GPU, extra)


def per_gpu(metric: str, suffix: str = "", extra: str = "") -> Query:
    return Query(g(metric, extra), legend=f"{PER_GPU}{suffix}")


def rate(metric: str) -> str:
    return f"rate({g(metric)}{RATE})"


def activity_panels() -> list[Json]:
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
    pstates = value_map({n: (f"P{n}", "green" if n == 0 else "blue") for n in range(16)})
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


def interconnect_panels() -> list[Json]:
    return [
        timeseries(
            "PCIe throughput",
            "PCIe traffic over NVML's last 20 ms window.",
            "Bps",
            per_gpu("suanli_gpu_pcie_throughput_bytes_per_second", " {{direction}}"),
            w=8,
        ),
        timeseries(
            "PCIe link",
            "Link generation and width in lanes, current and maximum: "
            "current under maximum while busy is a degraded link.",
            "none",
            per_gpu("suanli_gpu_pcie_link_generation", " gen {{link}}"),
            per_gpu("suanli_gpu_pcie_link_width", " width {{link}}"),
            w=8,
        ),
        timeseries(
            "PCIe replays",
            "Link-level retransmissions per second: a rising rate is a marginal link.",
            "cps",
            Query(rate("suanli_gpu_pcie_replays_total"), legend=PER_GPU),
            w=8,
        ),
        timeseries(
            "NVLink links",
            "NVLink links up and down. The per-link line needs collectors.gpu.detail: true in "
            "the agent's configuration (off by default). Empty on boards without NVLink.",
            "none",
            per_gpu("suanli_gpu_nvlink_links", " {{state}}"),
            Query(
                f"sum by (instance, gpu) ({g('suanli_gpu_nvlink_up')})",
                legend=f"{PER_GPU} links up (detail)",
            ),
            w=8,
            no_value="No NVLink on the selected GPUs",
        ),
        timeseries(
            "NVLink throughput",
            "NVLink data bytes per second, summed over links.",
            "Bps",
            Query(rate("suanli_gpu_nvlink_bytes_total"), legend=f"{PER_GPU} {{{{direction}}}}"),
            w=8,
        ),
        timeseries(
            "NVLink errors",
            "NVLink CRC, replay and recovery errors per second.",
            "cps",
            Query(rate("suanli_gpu_nvlink_errors_total"), legend=f"{PER_GPU} {{{{error}}}}"),
            w=8,
        ),
    ]


def health_panels() -> list[Json]:
    up = value_map({0: ("down", "red"), 1: ("up", "green")})
    actions = value_map(
        {
            0: ("none", "green"),
            1: ("reset", "orange"),
            2: ("reboot", "red"),
            3: ("drain P2P", "orange"),
            4: ("drain and reset", "red"),
        }
    )
    checks = Query(f"sum by (check) ({g('suanli_gpu_health_check_failed')})", legend="{{check}}")
    xids = Query(
        f"increase({g('suanli_gpu_xid_errors_total')}{RATE})", legend=f"{PER_GPU} XID {{{{xid}}}}"
    )
    memory = f"{g('suanli_gpu_remapped_rows')} or {g('suanli_gpu_retired_pages')}"
    return [
        state_timeline(
            "GPU answering",
            "1 while the last NVML read of the GPU succeeded.",
            "none",
            per_gpu("suanli_gpu_up"),
            mappings=up,
            w=8,
        ),
        state_timeline(
            "GPU healthy",
            "The agent's verdict: healthy while every check passes.",
            "none",
            per_gpu("suanli_gpu_healthy"),
            mappings=value_map({0: ("unhealthy", "red"), 1: ("healthy", "green")}),
            w=8,
        ),
        state_timeline(
            "Checks failing",
            "GPUs of the selection failing each check.",
            "none",
            checks,
            mappings=value_map({0: ("ok", "green")}, above=("", "red")),
            w=8,
        ),
        timeseries("XIDs", "XID events by GPU and code.", "none", xids, w=8, bars=True),
        timeseries(
            "ECC errors",
            "Memory ECC errors since the driver loaded.",
            "none",
            per_gpu("suanli_gpu_ecc_errors_total", " {{error}}"),
            w=8,
        ),
        timeseries(
            "Remapped rows / retired pages",
            "Memory rows remapped (Ampere and newer) "
            "or pages retired (older GPUs), by kind of error.",
            "none",
            Query(memory, legend=f"{PER_GPU} {{{{kind}}}}{{{{cause}}}}"),
            w=8,
        ),
        state_timeline(
            "Row remap pending or failed",
            "A pending remap needs a GPU reset; a failed one is an RMA.",
            "none",
            per_gpu("suanli_gpu_row_remap_state", " {{state}}"),
            mappings=OK_FAILED,
            w=12,
        ),
        state_timeline(
            "Recovery action",
            "What NVML asks for: none, reset, reboot, drain peer-to-peer, drain and reset.",
            "none",
            per_gpu("suanli_gpu_recovery_action"),
            mappings=actions,
            w=12,
        ),
    ]


def presence_panels() -> list[Json]:
    """GPUs expected and answering, the ones that do not, the NVSwitch fabric and its SXids."""
    sxids = f"increase({sel('suanli_nvswitch_sxid_errors_total', NODE)}{RATE})"
    return [
        timeseries(
            "GPUs expected, present and lost",
            "GPUs the node should have (PCI bus, configuration, seen), has enumerated and "
            "answering, and has lost (the difference).",
            "none",
            Query(sel("suanli_gpus", NODE), legend="{{state}}"),
            w=8,
        ),
        table(
            "GPUs not answering",
            "Each GPU that does not answer now, why (lost, hung, error, missing, nvml_down) "
            "and for how long; a GPU NVML does not list is named by its PCI bus id.",
            "s",
            Query(g("suanli_gpu_unresponsive_seconds")),
            w=8,
            rename={"Value": "down for"},
        ),
        timeseries(
            "NVSwitch SXids",
            "SXid errors of the node's NVSwitches from the kernel log, by switch, link and code.",
            "none",
            Query(sxids, legend="{{switch}} link {{link}} SXid {{sxid}}"),
            w=8,
            bars=True,
        ),
        table(
            "NVSwitch fabric",
            "Each GPU's NVSwitch fabric registration as NVML reports it (HGX boards): state "
            "completed and status success when the GPU can use NVLink.",
            "none",
            Query(g("suanli_gpu_fabric_info")),
            w=24,
            hide=("Value",),
        ),
    ]


def gpu_panels() -> list[Json]:
    return [
        *activity_panels(),
        *memory_power_panels(),
        *thermal_panels(),
        *interconnect_panels(),
        *health_panels(),
        *presence_panels(),
    ]
