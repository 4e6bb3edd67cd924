"""5. Jobs: GPUs, GPU-hours, energy and activity per job, and per user and namespace."""

from __future__ import annotations

from grafana.generator.board import dashboard
from grafana.generator.job_ledger import tenant_panels
from grafana.generator.panels import Json, Query, bargauge, stat, timeseries
from grafana.generator.promql import (
    A_JOB,
    CLUSTER,
    GPU,
    JOB_GPUS,
    JOB_POWER,
    JOULES_PER_WH,
    NO_JOB,
    integral,
    sel,
    unknown_as,
    with_owner,
)
from grafana.generator.tables import table

UID = "suanli-jobs"
TITLE = "Suanli / Jobs"
JOB = "cluster_scheduler_job_id"
JOB_LABELS = "cluster, scheduler, job_id, user, namespace, pod"
LEGEND = "{{scheduler}} {{job_id}} {{namespace}} {{pod}}"


def _energy_per_job() -> str:
    """GPU energy of each job over the range, Wh, with its owner's labels."""
    joules = integral(sel(JOB_POWER, CLUSTER, A_JOB), "cluster, scheduler, job_id")
    return with_owner(f"{joules} / {JOULES_PER_WH}")


def _mean(metric: str) -> str:
    return f"{sel(f'{JOB}:{metric}:sum', CLUSTER)} / {sel(f'{JOB}:{metric}:count', CLUSTER)}"


def now_stats() -> list[Json]:
    """Jobs running now, their GPUs, and the GPU power with and without a job."""
    return [
        stat(
            "Jobs running",
            "Jobs holding at least one GPU now (Slurm jobs, pods, containers, systemd units).",
            "none",
            Query(f"count({JOB_GPUS})"),
            w=4,
        ),
        stat(
            "GPUs in jobs",
            "GPUs held by jobs now; a GPU shared by two jobs counts twice.",
            "none",
            Query(f"sum({JOB_GPUS})"),
            w=4,
        ),
        stat(
            "GPU power of jobs",
            "Power of the GPUs jobs use, split by each job's share of a "
            "shared GPU (mean over 5 min).",
            "watt",
            Query(f"sum({sel(JOB_POWER, CLUSTER, A_JOB)})"),
            w=4,
            decimals=2,
        ),
        stat(
            "GPU power without a job",
            "Power of GPUs no job uses: idle GPUs still draw 60-100 W each.",
            "watt",
            Query(f"sum({sel(JOB_POWER, CLUSTER, NO_JOB)})"),
            w=4,
            decimals=2,
        ),
    ]


def range_stats() -> list[Json]:
    """GPU-hours and GPU energy of the jobs over the dashboard's time range."""
    gpu_hours = f"{integral(JOB_GPUS)} / 3600"
    energy = f"{integral(sel(JOB_POWER, CLUSTER, A_JOB))} / {JOULES_PER_WH}"
    return [
        stat(
            "GPU-hours in range",
            "GPU-hours held by jobs over the dashboard's time range.",
            "suffix: GPU-h",
            Query(gpu_hours, instant=True),
            w=4,
            decimals=1,
        ),
        stat(
            "Job GPU energy in range",
            "GPU energy of all jobs over the dashboard's time range: the basis of chargeback.",
            "watth",
            Query(energy, instant=True),
            w=4,
            decimals=2,
        ),
    ]


def jobs_table() -> list[Json]:
    columns = {
        "GPUs": (JOB_GPUS, "none"),
        "GPU-hours": (f"{integral(JOB_GPUS, JOB_LABELS)} / 3600", "suffix: GPU-h"),
        "GPU energy": (_energy_per_job(), "watth"),
        "utilisation": (_mean("suanli_gpu_utilization_ratio"), "percentunit"),
        "SM active": (_mean("suanli_gpu_sm_active_ratio"), "percentunit"),
    }
    queries = [Query(expr) for expr, _ in columns.values()]
    rename = {f"Value #{chr(ord('A') + i)}": name for i, name in enumerate(columns)}
    return [
        table(
            "Jobs",
            "Every job seen in the range: GPUs now, GPU-hours and GPU energy over the "
            "range, mean NVML utilisation and SM activity (GPM GPUs) of its GPUs now.",
            "none",
            *queries,
            w=24,
            h=10,
            rename=rename,
            units={name: unit for name, (_, unit) in columns.items()},
        ),
    ]


def owner_panels() -> list[Json]:
    def per(label: str, expr: str) -> Query:
        return Query(unknown_as(label, expr), legend=f"{{{{{label}}}}}", instant=True)

    panels = []
    for label in ("user", "namespace"):
        panels += [
            bargauge(
                f"GPUs by {label}",
                f"GPUs held now per {label} (unknown: not known to "
                "the agent, e.g. Slurm under cgroup v2 has no uid).",
                "none",
                per(label, f"sum by ({label}) ({JOB_GPUS})"),
            ),
            bargauge(
                f"GPU-hours by {label} in range",
                f"GPU-hours per {label} over the dashboard's time range.",
                "suffix: GPU-h",
                per(label, f"{integral(JOB_GPUS, label)} / 3600"),
            ),
            bargauge(
                f"GPU energy by {label} in range",
                f"GPU energy per {label} over the dashboard's time range.",
                "watth",
                per(label, f"sum by ({label}) ({_energy_per_job()})"),
            ),
        ]
    return panels


def trend_panels() -> list[Json]:
    biggest = f"topk(10, {JOB_GPUS})"
    return [
        timeseries(
            "GPUs per job",
            "The 10 jobs holding the most GPUs.",
            "none",
            Query(biggest, legend=LEGEND),
            w=8,
        ),
        timeseries(
            "GPU power per job",
            "The 10 jobs whose GPUs draw the most power (mean over 5 min).",
            "watt",
            Query(f"topk(10, {sel(JOB_POWER, CLUSTER, A_JOB)})", legend="{{scheduler}} {{job_id}}"),
            w=8,
        ),
        timeseries(
            "Utilisation of the largest jobs",
            "Mean NVML utilisation of the GPUs of the 10 jobs holding the most GPUs.",
            "percentunit",
            Query(
                f"({_mean('suanli_gpu_utilization_ratio')}) and on "
                f"(cluster, scheduler, job_id) {biggest}",
                legend=LEGEND,
            ),
            w=8,
            max_=1,
        ),
        table(
            "Jobs on the selected nodes",
            "Which job holds each GPU of the selected nodes, "
            "with its scheduler's names. Click a node for its detail.",
            "none",
            Query(sel("suanli_gpu_job_info", GPU)),
            w=24,
            hide=("Value", "uuid"),
        ),
    ]


def build() -> Json:
    panels = [
        *now_stats(),
        *range_stats(),
        *jobs_table(),
        *owner_panels(),
        *trend_panels(),
        *tenant_panels(),
    ]
    description = (
        "Per job, user and namespace: GPUs held, GPU-hours, GPU energy and how hard the GPUs "
        "work. Jobs come from the agents' cgroup attribution (docs/jobs.md)."
    )
    return dashboard(UID, TITLE, description, panels)
