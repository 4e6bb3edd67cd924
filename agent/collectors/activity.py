"""True GPU activity (GPM) and peak FLOP/s of the model: declared and sampled.

Activity families are absent where GPM is unsupported (before Hopper), never 0. MIG instances'
activity is the MIG view's (`agent.collectors.mig`).
"""

from __future__ import annotations

from agent.collectors.peak_flops import peak_flops
from agent.hw import GpuReading
from agent.metrics import MetricSpec, Sample

GPU = ("gpu", "uuid")

# activity key -> (name without prefix, help)
_RATIOS = {
    "sm_active": ("sm_active_ratio", "Fraction of SMs busy, averaged over the interval (GPM)."),
    "sm_occupancy": ("sm_occupancy_ratio", "Resident warps over the SMs' maximum (GPM)."),
    "tensor_active": ("tensor_active_ratio", "Fraction of time tensor cores were busy (GPM)."),
    "dram_active": ("dram_active_ratio", "Device memory bandwidth used over its peak (GPM)."),
    "graphics_engine_active": (
        "graphics_engine_active_ratio",
        "Fraction of time the graphics or compute engine was active (GPM).",
    ),
}
# pipe="tensor" would repeat suanli_gpu_tensor_active_ratio: left out (see the README).
_PIPES = {"pipe_fp64": "fp64", "pipe_fp32": "fp32", "pipe_fp16": "fp16"}


def ratio_specs(scope: str, labels: tuple[str, ...]) -> dict[str, MetricSpec]:
    return {
        key: MetricSpec(f"suanli_{scope}_{name}", "gauge", help, labels)
        for key, (name, help) in _RATIOS.items()
    }


GPU_RATIOS = ratio_specs("gpu", GPU)
# detail: suanli_gpu_delivered_flops_total carries the pipes' work by default (the series budget)
GPU_PIPE = MetricSpec(
    "suanli_gpu_pipe_active_ratio",
    "gauge",
    "Fraction of time each SM pipe was busy (GPM).",
    (*GPU, "pipe"),
    detail=True,
)
PEAK_FLOPS = MetricSpec(
    "suanli_gpu_peak_flops",
    "gauge",
    "Dense datasheet peak of the model, FLOP/s: bf16 by default, every precision with detail.",
    (*GPU, "precision"),
)
SPECS = (
    *GPU_RATIOS.values(),
    GPU_PIPE,
    PEAK_FLOPS,
)


def activity_samples(
    activity: dict[str, float],
    ratios: dict[str, MetricSpec],
    pipe: MetricSpec | None,
    ids: tuple[str, ...],
) -> list[Sample]:
    samples = [Sample(ratios[k], ids, v) for k, v in activity.items() if k in ratios]
    if pipe is not None:
        pipes = _PIPES.items()
        samples += [Sample(pipe, (*ids, p), activity[k]) for k, p in pipes if k in activity]
    return samples


DEFAULT_PEAKS = ("bf16",)  # what efficiency rules and panels use; the rest costs 32 series


def gpu_samples(reading: GpuReading, ids: tuple[str, str], detail: bool = False) -> list[Sample]:
    """Activity and peak FLOP/s of one GPU that is up."""
    pipe = GPU_PIPE if detail else None
    samples = activity_samples(reading.activity, GPU_RATIOS, pipe, ids)
    samples += [
        Sample(PEAK_FLOPS, (*ids, precision), flops)
        for precision, flops in peak_flops(reading.device.model).items()
        if detail or precision in DEFAULT_PEAKS
    ]
    return samples
