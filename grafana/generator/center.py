"""1. Center overview: GPU states, utilisation vs activity, power, energy, delivered compute (its
stats and panels in `center_compute.py`)."""

from __future__ import annotations

from grafana.generator.board import dashboard
from grafana.generator.center_compute import compute_stats, delivered_panels
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
    JOULES_PER_WH,
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


def _count(state: str) -> str:
    return rack_sum(f"suanli_gpu_{state}:count")


def _in_state(title: str, description: str, state: str, bad_at: float | None = None) -> Json:
    """GPUs in `state` now (the rollup `suanli_gpu_<state>:count`)."""
    return stat(title, description, "none", Query(_count(state)), bad_at=bad_at)


def gpu_stats() -> list[Json]:
    """GPUs by state: all, busy, idle, unhealthy and lost (the last two link to Health)."""
    return [
        stat(
            "GPUs",
            "Every GPU the agents of the selected racks know, lost ones included "
            "(busy + idle + unhealthy + lost).",
            "none",
            Query(rack_sum("suanli_gpus:count")),
        ),
        _in_state(
            "Busy",
            "Healthy GPUs on which a kernel ran more than 5% of the last sample "
            "period (NVML utilisation).",
            "busy",
        ),
        _in_state(
            "Idle", "Healthy GPUs at 5% utilisation or less, allocated to a job or not.", "idle"
        ),
        link_to(
            _in_state(
                "Unhealthy",
                "GPUs that answer NVML but fail a health check (the Health dashboard says which).",
                "unhealthy",
                bad_at=1,
            ),
            HEALTH,
            "Health",
        ),
        link_to(
            _in_state(
                "Lost",
                "GPUs that stopped answering NVML (suanli_gpu_up 0), usually after XID 79.",
                "lost",
                bad_at=1,
            ),
            HEALTH,
            "Health",
        ),
    ]


def allocation_stats() -> list[Json]:
    """GPUs held by jobs, those of them idle (linked to Efficiency), and the allocation rate."""
    allocated = rack_sum("suanli_gpu_allocated:count")
    return [
        stat(
            "Allocated",
            "GPUs held by at least one job (Slurm, Kubernetes, container, systemd unit).",
            "none",
            Query(allocated),
        ),
        link_to(
            _in_state(
                "Allocated but idle",
                "GPUs a job holds while they are healthy and idle: "
                "waste to reclaim (Efficiency dashboard).",
                "allocated_idle",
                bad_at=1,
            ),
            "suanli-efficiency",
            "Efficiency",
        ),
        stat(
            "Allocation rate",
            "Allocated GPUs over all GPUs.",
            "percentunit",
            Query(f"{allocated} / {rack_sum('suanli_gpus:count')}"),
            decimals=1,
        ),
    ]


def power_stats() -> list[Json]:
    """IT power now (linked to the Power dashboard) and IT energy today."""
    node_power = rack("suanli_node_power_watts:sum")
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
        *allocation_stats(),
        *power_stats(),
        *compute_stats(),
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
