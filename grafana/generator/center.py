"""1. Center overview: GPU states, utilisation vs activity, power, energy, delivered compute."""

from __future__ import annotations

from grafana.generator.board import dashboard
from grafana.generator.job_ledger import sold_panels
from grafana.generator.panels import (
    Json,
    Query,
    bargauge,
    gauge,
    heatmap,
    link_to,
    stat,
    timeseries,
    today,
)
from grafana.generator.promql import (
    HALL,
    JOULES_PER_WH,
    PF_DAY,
    RACK,
    integral,
    rack,
    rack_mean,
    rack_sum,
    sel,
)

UID = "suanli-center"
TITLE = "Suanli / Center overview"
STATES = ("busy", "idle", "unhealthy", "lost")
HEALTH = "suanli-health"
DELIVERED = "suanli_gpu_delivered_flops:rate5m"
FLOATING = 'precision!="int8"'  # int8 counts integer operations, not FLOPs


def _count(state: str) -> str:
    return rack_sum(f"suanli_gpu_{state}:count")


def gpu_stats() -> list[Json]:
    total = rack_sum("suanli_gpus:count")
    allocated = rack_sum("suanli_gpu_allocated:count")
    return [
        stat(
            "GPUs",
            "Every GPU the agents of the selected racks know, lost ones included "
            "(busy + idle + unhealthy + lost).",
            "none",
            Query(total),
        ),
        stat(
            "Busy",
            "Healthy GPUs on which a kernel ran more than 5% of the last sample "
            "period (NVML utilisation).",
            "none",
            Query(_count("busy")),
        ),
        stat(
            "Idle",
            "Healthy GPUs at 5% utilisation or less, allocated to a job or not.",
            "none",
            Query(_count("idle")),
        ),
        link_to(
            stat(
                "Unhealthy",
                "GPUs that answer NVML but fail a health check (the Health dashboard says which).",
                "none",
                Query(_count("unhealthy")),
                bad_at=1,
            ),
            HEALTH,
            "Health",
        ),
        link_to(
            stat(
                "Lost",
                "GPUs that stopped answering NVML (suanli_gpu_up 0), usually after XID 79.",
                "none",
                Query(_count("lost")),
                bad_at=1,
            ),
            HEALTH,
            "Health",
        ),
        stat(
            "Allocated",
            "GPUs held by at least one job (Slurm, Kubernetes, container, systemd unit).",
            "none",
            Query(allocated),
        ),
        link_to(
            stat(
                "Allocated but idle",
                "GPUs a job holds while they are healthy and idle: "
                "waste to reclaim (Efficiency dashboard).",
                "none",
                Query(_count("allocated_idle")),
                bad_at=1,
            ),
            "suanli-efficiency",
            "Efficiency",
        ),
        stat(
            "Allocation rate",
            "Allocated GPUs over all GPUs.",
            "percentunit",
            Query(f"{allocated} / {total}"),
            decimals=1,
        ),
    ]


def power_stats() -> list[Json]:
    node_power = rack("suanli_node_power_watts:sum")
    delivered = rack(DELIVERED, FLOATING)
    bf16 = rack(DELIVERED, 'precision="bf16"')
    return [
        link_to(
            stat(
                "IT power now",
                "Power of the selected nodes: the platform meter where a "
                "node has one, else GPUs + CPU packages + DRAM. Facility power is this x "
                "PUE (Power dashboard).",
                "watt",
                Query(f"sum({node_power})"),
                w=4,
                decimals=2,
            ),
            "suanli-power",
            "Power, energy and carbon",
        ),
        today(
            stat(
                "IT energy today",
                "Energy of the selected nodes since midnight (browser time), "
                "integrated from the node-power rollup.",
                "watth",
                Query(f"{integral(node_power)} / {JOULES_PER_WH}", instant=True),
                w=4,
                decimals=2,
            )
        ),
        stat(
            "Delivered PFLOP/s",
            "Floating-point work delivered now, all precisions: each GPU's GPM pipe activity "
            "x that pipe's peak x held / max SM clock (docs/delivered-compute.md); Hopper and "
            "newer only.",
            "flops",
            Query(f"sum({delivered})"),
            w=4,
            decimals=2,
        ),
        gauge(
            "Share of installed peak",
            "Delivered bf16 (16-bit tensor and vector) FLOP/s over the installed dense BF16 "
            "peak of the GPUs the agents know the model of. Well-run training reaches "
            "35-45%.",
            "percentunit",
            Query(f"sum({bf16}) / {rack_sum('suanli_gpu_peak_flops_bf16:sum')}"),
            w=4,
            h=4,
        ),
        stat(
            "PF-days in range",
            "Delivered compute over the dashboard's time range in PF-days "
            "(10^15 FLOP/s for a day; ChatGPT's training was about 3,640 PF-days).",
            "suffix: PF-days",
            Query(f"{integral(delivered)} / {PF_DAY:.0f}", instant=True),
            w=4,
            decimals=3,
        ),
        stat(
            "Installed PFLOP/s",
            "Dense BF16 peak of the GPUs whose model the agents know.",
            "flops",
            Query(rack_sum("suanli_gpu_peak_flops_bf16:sum")),
            w=4,
            decimals=1,
        ),
    ]


def delivered_panels() -> list[Json]:
    by_precision = Query(rack_sum(DELIVERED, "precision"), legend="{{precision}}")
    pf_days = sel("cluster_hall:suanli_gpu_delivered_pf_days:rate1d", HALL, FLOATING)
    return [
        timeseries(
            "Delivered compute by precision",
            "FLOP/s delivered per precision GPM can tell: bf16 (16-bit tensor and vector; tf32 "
            "counts up to 2x high, fp8 up to 2x low), fp32, fp64 (tensor and vector), int8 "
            "(integer operations/s). docs/delivered-compute.md.",
            "flops",
            by_precision,
            stack=True,
        ),
        timeseries(
            "PF-days per day by hall",
            "Floating-point PF-days each hall delivered over the 24 hours up to each point "
            "(the day's mean PF/s), all precisions but int8.",
            "suffix: PF-days",
            Query(f"sum by (hall) ({pf_days})", legend="{{hall}}"),
            stack=True,
        ),
    ]


def activity_panels() -> list[Json]:
    ratios = {
        "NVML utilisation": "suanli_gpu_utilization_ratio",
        "SM activity": "suanli_gpu_sm_active_ratio",
        "tensor activity": "suanli_gpu_tensor_active_ratio",
    }
    series = [Query(rack_mean(m), legend=name) for name, m in ratios.items()]
    gauges = [
        gauge(
            f"Fleet {name}",
            f"Mean {name} of the selected GPUs now (sum / count rollups; "
            "SM and tensor activity come from Hopper and newer GPUs only).",
            "percentunit",
            Query(rack_mean(metric)),
        )
        for name, metric in ratios.items()
    ]
    return [
        timeseries(
            "Utilisation vs true activity",
            "NVML utilisation says a kernel ran; SM "
            "and tensor activity say how much of the GPU worked. A wide gap means "
            "GPUs that look busy but compute little.",
            "percentunit",
            *series,
            max_=1,
        ),
        *gauges,
    ]


def fleet_panels() -> list[Json]:
    states = [Query(_count(s), legend=s) for s in STATES]
    by_hall = Query(rack_sum("suanli_node_power_watts:sum", "hall"), legend="{{hall}}")
    return [
        timeseries(
            "GPU states",
            "GPUs by exclusive state: busy, idle, unhealthy, lost; "
            "stacked, they add up to all GPUs.",
            "none",
            *states,
            stack=True,
        ),
        timeseries("IT power by hall", "Node power summed per hall.", "watt", by_hall, stack=True),
    ]


def rack_panels() -> list[Json]:
    activity = sel("cluster_hall_rack:suanli_gpu_sm_active_ratio:avg", RACK)
    top = f"topk(10, {rack('suanli_node_power_watts:sum')})"
    return [
        heatmap(
            "SM activity by hall and rack",
            "One row per rack (hall / rack), colour = "
            "mean SM activity of its GPUs. Cold rows are racks doing little work; a rack "
            "missing has no Hopper GPUs.",
            "percentunit",
            Query(activity, legend="{{hall}} / {{rack}}"),
            y_unit="none",
            w=16,
            h=10,
        ),
        bargauge(
            "Top racks by power",
            "The 10 racks of the selection that draw the most IT power now.",
            "watt",
            Query(top, legend="{{hall}} / {{rack}}", instant=True),
            h=10,
        ),
    ]


def build() -> Json:
    panels = [
        *gpu_stats(),
        *power_stats(),
        *delivered_panels(),
        *activity_panels(),
        *fleet_panels(),
        *rack_panels(),
    ]
    panels += sold_panels()
    description = (
        "The whole center at a glance: GPU states, activity, power, energy and delivered "
        "compute, from recording rules only (fast at any scale)."
    )
    return dashboard(UID, TITLE, description, panels)
