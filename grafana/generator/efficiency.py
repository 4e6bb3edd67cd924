"""2. Efficiency: allocation vs activity, idle-but-allocated GPUs, idle memory, activity spread,
delivered compute against the installed peak, and straggling jobs."""

from __future__ import annotations

from grafana.generator.board import dashboard
from grafana.generator.panels import (
    Json,
    Query,
    bargauge,
    heatmap,
    stat,
    timeseries,
)
from grafana.generator.promql import CLUSTER, GPU, HALL, integral, rack, rack_sum, sel
from grafana.generator.tables import table

UID = "suanli-efficiency"
TITLE = "Suanli / Efficiency"
IDLE = 0.05  # the rollups' idle threshold: utilisation <= 5%
JOB = "cluster_scheduler_job_id"


def _job_mean(metric: str, group: str = "") -> str:
    grouping = f" by ({group})" if group else ""
    total = f"sum{grouping} ({sel(f'{JOB}:{metric}:sum', CLUSTER)})"
    return f"{total} / sum{grouping} ({sel(f'{JOB}:{metric}:count', CLUSTER)})"


def allocation_stats() -> list[Json]:
    """How many GPUs jobs hold, and the idle ones, held or not."""
    total, allocated = rack_sum("suanli_gpus:count"), rack_sum("suanli_gpu_allocated:count")
    idle = rack_sum("suanli_gpu_idle:count")
    allocated_idle = rack_sum("suanli_gpu_allocated_idle:count")
    return [
        stat(
            "Allocation rate",
            "GPUs held by a job over all GPUs of the selected racks.",
            "percentunit",
            Query(f"{allocated} / {total}"),
            w=4,
            decimals=1,
        ),
        stat(
            "Allocated but idle",
            "Healthy GPUs a job holds that ran a kernel 5% of the time "
            "or less: ask the job's owner (table below).",
            "none",
            Query(allocated_idle),
            w=4,
            bad_at=1,
        ),
        stat(
            "Idle, unallocated",
            "Healthy idle GPUs no job holds: capacity the scheduler can hand out.",
            "none",
            Query(f"{idle} - {allocated_idle}"),
            w=4,
        ),
    ]


def activity_stats() -> list[Json]:
    """How much the allocated GPUs work, and the GPU-hours held idle."""
    gpu_hours = f"{integral(rack('suanli_gpu_allocated_idle:count'))} / 3600"
    return [
        stat(
            "Utilisation of allocated GPUs",
            "Mean NVML utilisation of the GPUs jobs hold, over the selected clusters.",
            "percentunit",
            Query(_job_mean("suanli_gpu_utilization_ratio")),
            w=4,
            decimals=1,
        ),
        stat(
            "SM activity of allocated GPUs",
            "Mean SM activity (GPM, Hopper and newer) of "
            "the GPUs jobs hold: how much of the allocated silicon works.",
            "percentunit",
            Query(_job_mean("suanli_gpu_sm_active_ratio")),
            w=4,
            decimals=1,
        ),
        stat(
            "Idle allocated GPU-hours",
            "GPU-hours held by jobs while idle, over the dashboard's time range.",
            "suffix: GPU-h",
            Query(gpu_hours, instant=True),
            w=4,
            decimals=1,
        ),
    ]


def trend_panels() -> list[Json]:
    equivalents = [
        Query(rack_sum("suanli_gpu_allocated:count"), legend="allocated GPUs"),
        Query(rack_sum("suanli_gpu_busy:count"), legend="busy GPUs (utilisation > 5%)"),
        Query(rack_sum("suanli_gpu_sm_active_ratio:sum"), legend="SM-active GPU equivalents"),
        Query(rack_sum("suanli_gpu_tensor_active_ratio:sum"), legend="tensor-active GPU equiv."),
    ]
    by_hall = Query(rack_sum("suanli_gpu_allocated_idle:count", "hall"), legend="{{hall}}")
    return [
        timeseries(
            "Allocation vs real activity",
            "GPUs allocated, GPUs busy, and the sum of "
            "SM / tensor activity as whole-GPU equivalents (8 GPUs at 50% = 4). The gap "
            "between allocated and active is the waste.",
            "none",
            *equivalents,
        ),
        timeseries(
            "Allocated but idle, by hall",
            "Healthy, idle GPUs held by a job, per hall.",
            "none",
            by_hall,
            stack=True,
        ),
    ]


def distribution_panels() -> list[Json]:
    def buckets(metric: str, instant: bool = False) -> Query:
        expr = f"sum by (le) ({sel(f'cluster_hall:{metric}:bucket', HALL)})"
        return Query(expr, legend="{{le}}", fmt="heatmap", instant=instant)

    return [
        heatmap(
            "Distribution of SM activity across GPUs",
            "How many GPUs sit at each level "
            "of SM activity over time (buckets of the hall-level histogram rollup; GPM "
            "GPUs only). A band at the bottom is idle silicon.",
            "none",
            buckets("suanli_gpu_sm_active_ratio"),
            y_unit="percentunit",
        ),
        bargauge(
            "GPUs by utilisation band, now",
            "GPUs of the selected halls per NVML utilisation band (upper bound of each band).",
            "none",
            buckets("suanli_gpu_utilization_ratio", instant=True),
            w=12,
            h=9,
        ),
    ]


def waste_tables() -> list[Json]:
    jobs_on_idle = sel("gpu:suanli_gpu_allocated_idle:job_info", GPU)
    memory = (
        f"{sel('suanli_job_gpu_memory_used_bytes', GPU)} and on (instance, job, uuid) "
        f"({sel('suanli_gpu_utilization_ratio', GPU)} <= {IDLE})"
    )
    return [
        table(
            "Allocated but idle GPUs and their jobs",
            "Each healthy GPU at 5% utilisation "
            "or less that a job holds, with the job (per-GPU rows of the selected nodes). "
            "Click a node for its detail.",
            "percentunit",
            Query(jobs_on_idle),
            rename={"Value": "utilisation"},
            hide=("uuid",),
        ),
        table(
            "Memory held at near-zero activity",
            "GPU memory that jobs hold on GPUs at 5% "
            "utilisation or less: memory no other job can use.",
            "bytes",
            Query(memory),
            rename={"Value": "memory held"},
            hide=("uuid",),
        ),
    ]


def delivered_panels() -> list[Json]:
    delivered = rack_sum("suanli_gpu_delivered_flops:rate5m", "hall", 'precision="bf16"')
    peak = rack_sum("suanli_gpu_peak_flops_bf16:sum", "hall")
    pf_days = sel("cluster_hall:suanli_gpu_delivered_pf_days:rate1d", HALL)
    return [
        timeseries(
            "Delivered bf16 over installed peak, by hall",
            "Measured 16-bit FLOP/s (GPM pipes x peak x held / max SM clock) over the dense "
            "BF16 peak of the hall's known GPUs: what the silicon delivers of what it could.",
            "percentunit",
            Query(f"{delivered} / {peak}", legend="{{hall}}"),
        ),
        bargauge(
            "PF-days per day by hall and precision",
            "Work each hall delivered over the last 24 hours, per precision, in PF-days "
            "(int8: peta-operation-days).",
            "suffix: PF-days",
            Query(
                f"sum by (hall, precision) ({pf_days})",
                legend="{{hall}} {{precision}}",
                instant=True,
            ),
        ),
    ]


def straggler_table() -> list[Json]:
    spreads = {
        "SM activity spread": "suanli_gpu_sm_active_ratio:spread",
        "SM clock spread": "suanli_gpu_sm_clock_hertz:relative_spread",
        "power spread": "suanli_gpu_power_watts:relative_spread",
    }
    queries = [Query(sel(f"{JOB}:{rule}", CLUSTER)) for rule in spreads.values()]
    columns = {f"Value #{chr(ord('A') + i)}": name for i, name in enumerate(spreads)}
    return [
        table(
            "Straggling jobs: spread across each job's GPUs",
            "Per job over all its nodes: SM activity max - min, SM clock and power "
            "(max - min) / max. One GPU far behind its peers holds back every synchronous "
            "step (alert SuanliJobStraggler at an SM activity spread over 30 points).",
            "percentunit",
            *queries,
            w=24,
            rename=columns,
        )
    ]


def job_panels() -> list[Json]:
    group = "cluster, scheduler, job_id, namespace, pod"
    least = f"bottomk(10, {_job_mean('suanli_gpu_sm_active_ratio', group)})"
    return [
        bargauge(
            "Least active jobs",
            "The 10 jobs with the lowest mean SM activity of their "
            "GPUs (GPM GPUs only): allocated but inefficient.",
            "percentunit",
            Query(least, legend="{{scheduler}} {{job_id}} {{namespace}} {{pod}}", instant=True),
            w=24,
            h=8,
        ),
    ]


def build() -> Json:
    panels = [
        *allocation_stats(),
        *activity_stats(),
        *trend_panels(),
        *distribution_panels(),
        *delivered_panels(),
        *waste_tables(),
        *job_panels(),
        *straggler_table(),
    ]
    description = (
        "GPU waste, four kinds: unavailable, unallocated, allocated but idle, allocated but "
        "inefficient. Rollups for the fleet, per-GPU tables for what to act on."
    )
    return dashboard(UID, TITLE, description, panels)
