"""PromQL building blocks shared by the dashboards: scopes, rollup selectors, range integrals.

Center-level panels read recording rules (deploy/prometheus/rules/suanli-recording.yml), never
raw per-GPU series: at the rack level a center of 1,000 nodes is a few hundred series, where the
raw series are 8,000 GPUs' worth. Raw series are for node-scoped panels and per-GPU tables.
"""

from __future__ import annotations

# Label matchers of the chained dashboard variables, widest first. Every variable is
# multi-valued with ".*" for All, so each is a regex match.
CLUSTER = 'cluster=~"$cluster"'
HALL = f'{CLUSTER},hall=~"$hall"'
RACK = f'{HALL},rack=~"$rack"'
NODE = f'{RACK},instance=~"$instance"'
GPU = f'{NODE},gpu=~"$gpu"'

# One series per cluster, evaluated at the same interval as every rollup (all rule groups use the
# global evaluation_interval): its sample count over a range tells how many evaluations the
# range holds (see integral()).
REFERENCE = f"cluster:suanli_gpus:count{{{CLUSTER}}}"
JOB_GPUS = f"cluster_scheduler_job_id:suanli_job_gpus:count{{{CLUSTER}}}"
JOB_POWER = "cluster_scheduler_job_id:suanli_job_gpu_energy_joules:rate5m"
NO_JOB = 'job_id="none"'  # the job energy of GPUs that no job holds
A_JOB = 'job_id!="none"'
JOULES_PER_WH = 3600
JOULES_PER_KWH = 3.6e6
PF_DAY = 1e15 * 86400  # FLOP in a PF-day: 10^15 FLOP/s for a day


def sel(metric: str, scope: str = "", extra: str = "") -> str:
    """`metric{scope,extra}`."""
    matchers = ",".join(m for m in (scope, extra) if m)
    return f"{metric}{{{matchers}}}"


def by(labels: str) -> str:
    """` by (labels)` or nothing."""
    return f" by ({labels})" if labels else ""


def rack(rule: str, extra: str = "") -> str:
    """The rack-level rollup `cluster_hall_rack:<rule>` within the selected cluster/hall/rack."""
    return sel(f"cluster_hall_rack:{rule}", RACK, extra)


def rack_sum(rule: str, group: str = "", extra: str = "") -> str:
    """Sum of a rack-level rollup over the selected racks, optionally grouped."""
    return f"sum{by(group)} ({rack(rule, extra)})"


def rack_mean(metric: str, group: str = "") -> str:
    """Mean of a ratio over the selected racks' GPUs: sum of :sum over sum of :count."""
    return f"{rack_sum(f'{metric}:sum', group)} / {rack_sum(f'{metric}:count', group)}"


def integral(series: str, group: str = "") -> str:
    """The time integral of `series` over the dashboard range, in its unit times seconds.

    Each sample of a rollup stands for range / N seconds, N being the evaluations in the range
    (counted on the cluster's reference rollup), so a series that exists for part of the range
    (a job, a new rack) adds only what it drew while it existed. `series` needs a cluster label.
    """
    per_cluster = (
        f"sum_over_time({series}[$__range]) / on (cluster) group_left () "
        f"count_over_time({REFERENCE}[$__range])"
    )
    return f"sum{by(group)} ({per_cluster}) * $__range_s"


def job_owner() -> str:
    """One series of value 1 per job seen in the range, carrying its user, namespace and pod."""
    latest = f"last_over_time({JOB_GPUS}[$__range])"
    return f"clamp(topk by (cluster, scheduler, job_id) (1, {latest}), 1, 1)"


def with_owner(per_job: str) -> str:
    """A per-job expression (labels cluster, scheduler, job_id) with the job's owner labels."""
    return (
        f"({per_job}) * on (cluster, scheduler, job_id) group_left (user, namespace, pod) "
        f"{job_owner()}"
    )


def unknown_as(label: str, expr: str, text: str = "(unknown)") -> str:
    """`expr` with an empty `label` shown as `text` (user and namespace are not always known)."""
    return f'label_replace({expr}, "{label}", "{text}", "{label}", "")'
