"""The GPU collector's delivered-work counter, and why a GPU has none (absent, never 0).

`suanli_gpu_delivered_flops_total{precision}` adds each cycle's `gpu_delivered_flops` (the
increments `agent.collectors.delivered` defines, which the job ledger splits), so rate() gives
FLOP/s. A precision's series appears once the GPU has done work in it (8 GPUs x 4 precisions
would not fit the series budget); it appears at 0 and the work of that first cycle is added
one cycle later, so Prometheus's rate() and increase() miss none of it. A GPU that has no such
series says why on `suanli_gpu_delivered_flops_unavailable`. The job ledger splits the same
`gpu_delivered_flops` of each cycle as it comes, so a new precision's first cycle is in the
jobs' counters one cycle before it is in the GPU's; over any window longer than a cycle both
hold the same work.
"""

from __future__ import annotations

from agent.collectors.delivered import clock_ratio, gpu_delivered_flops, mig_share, precisions
from agent.hw import GpuReading
from agent.metrics import MetricSpec, Sample

GPU = ("gpu", "uuid")

DELIVERED = MetricSpec(
    "suanli_gpu_delivered_flops_total",
    "counter",
    "Operations delivered per precision as GPM can tell them (int8: integer operations): "
    "pipe activity x datasheet peak x held SM clock / max SM clock, summed over time.",
    (*GPU, "precision"),
)
UNAVAILABLE = MetricSpec(
    "suanli_gpu_delivered_flops_unavailable",
    "gauge",
    "1 for a GPU without suanli_gpu_delivered_flops_total, with the reason: gpm_off, "
    "gpm_unsupported, unknown_model, unknown_sm_count, no_clock, or no_activity (no GPM answer "
    "yet, or no work done yet).",
    (*GPU, "reason"),
)
SPECS = (DELIVERED, UNAVAILABLE)


def unavailable_reason(reading: GpuReading) -> str:
    """Why this cycle gave a GPU no delivered work."""
    if reading.gpm_supported is None:
        return "gpm_off"
    if not reading.gpm_supported:
        return "gpm_unsupported"
    if not precisions(reading.device.model):
        return "unknown_model"
    if reading.mig and any(mig_share(reading, mig) is None for mig in reading.mig):
        return "unknown_sm_count"
    if clock_ratio(reading) is None:
        return "no_clock"
    return "no_activity"


class DeliveredWork:
    """Per GPU (by UUID) and precision, the operations delivered since the agent started."""

    def __init__(self) -> None:
        self._totals: dict[str, dict[str, float]] = {}
        self._held: dict[str, dict[str, float]] = {}  # first work of a new series, one cycle

    def samples(self, reading: GpuReading, ids: tuple[str, str]) -> list[Sample]:
        """Add this cycle's work of a GPU that is up; its counters, or the reason it has none."""
        uuid = reading.device.uuid
        totals = self._totals.setdefault(uuid, {})
        held = self._held.pop(uuid, {})
        step: dict[str, float] = {}
        for precision, ops in gpu_delivered_flops(reading).items():
            if precision in totals:
                step[precision] = ops + held.pop(precision, 0.0)
            elif ops > 0:
                totals[precision] = step[precision] = 0.0
                self._held.setdefault(uuid, {})[precision] = ops
        for precision, ops in held.items():  # no answer this cycle: count it now
            step[precision] = ops
        for precision, ops in step.items():
            totals[precision] += ops
        if not totals:
            return [Sample(UNAVAILABLE, (*ids, unavailable_reason(reading)), 1.0)]
        return [Sample(DELIVERED, (*ids, p), ops) for p, ops in sorted(totals.items())]
