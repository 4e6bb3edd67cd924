"""True GPU activity (GPM), peak FLOP/s of the model, and MIG instances: declared and sampled.

Activity families are absent where GPM is unsupported (before Hopper), never 0. MIG instances
carry their own series under `suanli_mig_*` with `gpu_instance` and `compute_instance` labels;
device-level values (power, temperature) stay on the parent GPU only.
"""

from __future__ import annotations

from agent.collectors.peak_flops import peak_flops
from agent.hw import GpuReading, MigReading
from agent.metrics import MetricSpec, Sample

GPU = ("gpu", "uuid")
MIG = ("gpu", "uuid", "gpu_instance", "compute_instance")

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


def _ratio_specs(scope: str, labels: tuple[str, ...]) -> dict[str, MetricSpec]:
    return {
        key: MetricSpec(f"suanli_{scope}_{name}", "gauge", help, labels)
        for key, (name, help) in _RATIOS.items()
    }


GPU_RATIOS = _ratio_specs("gpu", GPU)
MIG_RATIOS = _ratio_specs("mig", MIG)
GPU_PIPE = MetricSpec(
    "suanli_gpu_pipe_active_ratio",
    "gauge",
    "Fraction of time each SM pipe was busy (GPM).",
    (*GPU, "pipe"),
)
MIG_PIPE = MetricSpec(
    "suanli_mig_pipe_active_ratio",
    "gauge",
    "Fraction of time each SM pipe was busy (GPM).",
    (*MIG, "pipe"),
)
PEAK_FLOPS = MetricSpec(
    "suanli_gpu_peak_flops",
    "gauge",
    "Dense datasheet peak of the model, FLOP/s: bf16 by default, every precision with detail.",
    (*GPU, "precision"),
)
MIG_INFO = MetricSpec(
    "suanli_mig_info",
    "gauge",
    "A MIG instance of a GPU (value 1); join on uuid.",
    (*MIG, "profile", "mig_uuid"),
)
MIG_MEMORY_USED = MetricSpec(
    "suanli_mig_memory_used_bytes", "gauge", "Memory in use in the MIG instance.", MIG
)
MIG_MEMORY_TOTAL = MetricSpec(
    "suanli_mig_memory_total_bytes", "gauge", "Memory of the MIG instance.", MIG
)

SPECS = (
    *GPU_RATIOS.values(),
    GPU_PIPE,
    PEAK_FLOPS,
    MIG_INFO,
    MIG_MEMORY_USED,
    MIG_MEMORY_TOTAL,
    *MIG_RATIOS.values(),
    MIG_PIPE,
)


def activity_samples(
    activity: dict[str, float],
    ratios: dict[str, MetricSpec],
    pipe: MetricSpec,
    ids: tuple[str, ...],
) -> list[Sample]:
    samples = [Sample(ratios[k], ids, v) for k, v in activity.items() if k in ratios]
    samples += [Sample(pipe, (*ids, p), activity[k]) for k, p in _PIPES.items() if k in activity]
    return samples


DEFAULT_PEAKS = ("bf16",)  # what efficiency rules and panels use; the rest costs 32 series


def gpu_samples(reading: GpuReading, ids: tuple[str, str], detail: bool = False) -> list[Sample]:
    """Activity, peak FLOP/s and MIG instances of one GPU that is up."""
    samples = activity_samples(reading.activity, GPU_RATIOS, GPU_PIPE, ids)
    samples += [
        Sample(PEAK_FLOPS, (*ids, precision), flops)
        for precision, flops in peak_flops(reading.device.model).items()
        if detail or precision in DEFAULT_PEAKS
    ]
    for mig in reading.mig:
        samples += _mig_samples(mig, ids)
    return samples


def _mig_samples(mig: MigReading, ids: tuple[str, str]) -> list[Sample]:
    instance = mig.instance
    mig_ids = (*ids, str(instance.gpu_instance), str(instance.compute_instance))
    samples = [Sample(MIG_INFO, (*mig_ids, instance.profile, instance.uuid), 1.0)]
    if mig.memory_used_bytes is not None:
        samples.append(Sample(MIG_MEMORY_USED, mig_ids, mig.memory_used_bytes))
    if mig.memory_total_bytes is not None:
        samples.append(Sample(MIG_MEMORY_TOTAL, mig_ids, mig.memory_total_bytes))
    return samples + activity_samples(mig.activity, MIG_RATIOS, MIG_PIPE, mig_ids)
