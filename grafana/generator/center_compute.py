"""1. Center overview, delivered compute: FLOP/s now, against the installed peak, PF-days over the
range and per day, by precision (docs/delivered-compute.md)."""

from __future__ import annotations

from grafana.generator.panels import Json, Query, gauge, stat, timeseries
from grafana.generator.promql import HALL, PF_DAY, integral, rack, rack_sum, sel

DELIVERED = "suanli_gpu_delivered_flops:rate5m"
FLOATING = 'precision!="int8"'  # int8 counts integer operations, not FLOPs


def _share_of_peak() -> Json:
    bf16 = rack(DELIVERED, 'precision="bf16"')
    return gauge(
        "Share of installed peak",
        "Delivered bf16 (16-bit tensor and vector) FLOP/s over the installed dense BF16 "
        "peak of the GPUs the agents know the model of. Well-run training reaches "
        "35-45%.",
        "percentunit",
        Query(f"sum({bf16}) / {rack_sum('suanli_gpu_peak_flops_bf16:sum')}"),
        w=4,
        h=4,
    )


def compute_stats() -> list[Json]:
    """Delivered compute now and over the range, against the installed peak."""
    delivered = rack(DELIVERED, FLOATING)
    return [
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
        _share_of_peak(),
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
    """Delivered FLOP/s by precision, PF-days per day by hall."""
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
