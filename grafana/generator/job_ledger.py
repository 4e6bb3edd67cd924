"""The center's view of the job counters: GPU-hours sold against busy, idle but allocated
GPU-hours, and delivered compute per tenant (center and jobs dashboards).

All from the recording rules over `suanli_job_gpu_seconds_total` and
`suanli_job_delivered_flops_total` (docs/jobs.md): GPU-seconds per second is a number of GPUs,
so a range integral / 3600 is GPU-hours; FLOP/s / 1e15 is PF-days per day.
"""

from __future__ import annotations

from grafana.generator.panels import Json, Query, bargauge, stat, timeseries
from grafana.generator.promql import CLUSTER, PF_DAY, integral, sel, unknown_as

SOLD = "cluster:suanli_job_gpu_seconds:rate5m"
TENANT = "cluster_{label}:suanli_job_delivered_flops:rate5m"
PETA = 1e15
STATES = {
    "allocated": (
        "GPU-hours sold in range",
        "GPU-hours held by jobs (allocated), MIG instances counted by their share of the GPU.",
    ),
    "busy": (
        "GPU-hours busy in range",
        "Of the GPU-hours sold, those with the SMs active "
        "(GPM SM activity; NVML utilisation on GPUs without GPM).",
    ),
    "idle_allocated": (
        "Idle but allocated GPU-hours in range",
        "GPU-hours jobs held while "
        "the GPU (or MIG instance) was idle: SM activity at most 5% over a "
        "sampling cycle. Waste to reclaim.",
    ),
}


def _state(state: str) -> str:
    return sel(SOLD, CLUSTER, f'state="{state}"')


def sold_panels() -> list[Json]:
    """For the center board: GPU-hours sold, busy and idle-allocated, and their course."""
    stats = [
        stat(
            title,
            help_,
            "suffix: GPU-h",
            Query(f"{integral(_state(s))} / 3600", instant=True),
            w=6,
            decimals=1,
            bad_at=None,
        )
        for s, (title, help_) in STATES.items()
    ]
    busy_share = f"sum({_state('busy')}) / sum({_state('allocated')})"
    stats.append(
        stat(
            "Busy share of GPU-hours sold",
            "Busy GPU-hours over GPU-hours sold, now (5 min).",
            "percentunit",
            Query(busy_share),
            w=6,
            decimals=1,
            bad_below=0.5,
        )
    )
    course = timeseries(
        "GPUs sold vs busy",
        "GPUs held by jobs (allocated), of them busy, and held while idle (5-minute means).",
        "none",
        Query(f"sum by (state) ({sel(SOLD, CLUSTER)})", legend="{{state}}"),
        w=24,
    )
    return [*stats, course]


def tenant_panels() -> list[Json]:
    """For the jobs board: delivered compute per namespace and per user."""
    panels = []
    for label in ("namespace", "user"):
        rule = sel(TENANT.format(label=label), CLUSTER)
        per_day = unknown_as(label, f"sum by ({label}) ({rule}) / {PETA:.0f}")
        in_range = unknown_as(label, f"{integral(rule, label)} / {PF_DAY:.0f}")
        panels += [
            timeseries(
                f"PF-days per day by {label}",
                f"Delivered BF16 compute of each {label}'s jobs in PF-days per day "
                "(10^15 FLOP/s sustained for a day is 1).",
                "none",
                Query(per_day, legend=f"{{{{{label}}}}}"),
                w=12,
            ),
            bargauge(
                f"PF-days by {label} in range",
                f"Delivered BF16 compute of each {label}'s jobs over the dashboard's range.",
                "suffix: PF-days",
                Query(in_range, legend=f"{{{{{label}}}}}", instant=True),
                w=12,
            ),
        ]
    return panels
