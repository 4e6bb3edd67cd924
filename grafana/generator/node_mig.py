"""6. Node and GPU detail, the MIG instances: their profiles, memory and GPM activity."""

from __future__ import annotations

from grafana.generator.node_gpu import PER_GPU, g, per_gpu
from grafana.generator.panels import Json, Query, timeseries
from grafana.generator.tables import table

MIG = f"{PER_GPU} GI {{{{gpu_instance}}}} CI {{{{compute_instance}}}}"
MIG_RATIOS = ("sm_active", "sm_occupancy", "tensor_active", "dram_active", "graphics_engine_active")


def mig_panels() -> list[Json]:
    ratios = [per_gpu(f"suanli_mig_{r}_ratio", f" GI {{{{gpu_instance}}}} {r}") for r in MIG_RATIOS]
    return [
        table(
            "MIG instances",
            "Each MIG instance: profile and MIG UUID (the id jobs see).",
            "none",
            Query(g("suanli_mig_info")),
            w=24,
            hide=("Value",),
        ),
        timeseries(
            "MIG memory",
            "Memory used and installed per MIG instance.",
            "bytes",
            Query(g("suanli_mig_memory_used_bytes"), legend=f"{MIG} used"),
            Query(g("suanli_mig_memory_total_bytes"), legend=f"{MIG} total"),
            w=8,
        ),
        timeseries(
            "MIG activity",
            "GPM ratios per MIG instance: SM active, occupancy, tensor, DRAM, engine.",
            "percentunit",
            *ratios,
            w=8,
            max_=1,
        ),
        timeseries(
            "MIG pipe activity",
            "Share of time each SM pipe was busy, per MIG instance.",
            "percentunit",
            Query(g("suanli_mig_pipe_active_ratio"), legend=f"{MIG} {{{{pipe}}}}"),
            w=8,
            max_=1,
        ),
    ]
