"""Delivered work per precision, from GPM's per-pipe activity (docs/delivered-compute.md).

Each pipe's work over an interval is its activity (the fraction of the interval the pipe was
busy) times that pipe's datasheet peak, scaled by the SM clock actually held over the maximum SM
clock NVML reports (the datasheet peak assumes the boost clock; a power-capped board runs
slower), times the interval. Pipes map to precisions as GPM can tell them:

- `bf16` (16-bit floating point): HMMA tensor at the bf16/fp16 dense tensor peak, plus the FP16
  pipe (non-tensor fp16 and bf16) at its vector peak. Neither pipe tells bf16 from fp16 (equal
  peaks); HMMA also runs tf32 (half the rate: counted up to 2x high) and fp8 (twice it: counted
  up to 2x low), so there is no fp16, tf32 or fp8 series.
- `fp64`: DFMA tensor (FP64 on tensor cores) at the fp64 tensor peak, plus the FP64 pipe at the
  fp64 vector peak.
- `fp32`: the FP32 pipe.
- `int8`: IMMA tensor at the int8 tensor peak: integer operations, not floating-point ones.

A precision is left out where the model's table lacks the peak of its first pipe; a further pipe
without a known peak is not counted (an undercount, docs/delivered-compute.md). A pipe GPM did
not answer for counts nothing; everything is {} where GPM gave no activity or a clock is unknown.
"""

from __future__ import annotations

from agent.collectors.peak_flops import SM_COUNT, pipe_peak_flops
from agent.hw import GpuReading, MigReading

# precision -> ((GPM activity key, peak key), ...): the pipes whose work adds up to it
PRECISION_PIPES: dict[str, tuple[tuple[str, str], ...]] = {
    "bf16": (("hmma_tensor_active", "bf16"), ("pipe_fp16", "fp16_vector")),
    "fp64": (("dfma_tensor_active", "fp64_tensor"), ("pipe_fp64", "fp64")),
    "fp32": (("pipe_fp32", "fp32"),),
    "int8": (("imma_tensor_active", "int8"),),
}


def precisions(model: str) -> tuple[str, ...]:
    """The precisions whose first pipe has a known peak on this model."""
    peaks = pipe_peak_flops(model)
    return tuple(p for p, pipes in PRECISION_PIPES.items() if pipes[0][1] in peaks)


def clock_ratio(reading: GpuReading) -> float | None:
    """SM clock held over the maximum SM clock; None where either is unknown."""
    held = reading.clocks_hertz.get("sm")
    maximum = reading.device.max_clocks_hertz.get("sm")
    if held is None or not maximum:
        return None
    return held / maximum


def _work(
    activity: dict[str, float], model: str, scale: float | None, seconds: float
) -> dict[str, float]:
    if not activity or scale is None or seconds <= 0:
        return {}
    peaks = pipe_peak_flops(model)
    work = {}
    for precision in precisions(model):
        pipes = PRECISION_PIPES[precision]
        if pipes[0][0] in activity:
            flops_per_s = sum(
                activity.get(key, 0.0) * peaks[peak] for key, peak in pipes if peak in peaks
            )
            work[precision] = flops_per_s * scale * seconds
    return work


def delivered_flops(reading: GpuReading, seconds: float) -> dict[str, float]:
    """Operations the whole GPU delivered per precision over the last `seconds` (the interval
    its GPM activity covers, `reading.activity_seconds`); {} where GPM cannot tell."""
    return _work(reading.activity, reading.device.model, clock_ratio(reading), seconds)


def mig_share(gpu: GpuReading, mig: MigReading) -> float | None:
    """The MIG instance's share of the GPU's SMs (so of its peak); None where unknown."""
    total = SM_COUNT.get(gpu.device.model)
    sms = mig.instance.multiprocessors
    if not total or not sms:
        return None
    return sms / total


def mig_delivered_flops(gpu: GpuReading, mig: MigReading, seconds: float) -> dict[str, float]:
    """The same for one MIG instance: its GPM activity (a share of its own SMs) times the GPU's
    peak times its SM share. Compute instances of one GPU instance share its activity, each
    counted over its own SMs, so they add up to the GPU instance's work."""
    ratio, share = clock_ratio(gpu), mig_share(gpu, mig)
    scale = None if ratio is None or share is None else ratio * share
    return _work(mig.activity, gpu.device.model, scale, seconds)


def gpu_delivered_flops(reading: GpuReading) -> dict[str, float]:
    """This cycle's increment of the GPU's counter: the GPU's own activity, or in MIG mode the
    sum of its instances' (each over the interval its own activity covers)."""
    if reading.mig:
        total: dict[str, float] = {}
        for mig in reading.mig:
            for precision, ops in mig_delivered_flops(reading, mig, _seconds(mig)).items():
                total[precision] = total.get(precision, 0.0) + ops
        return total
    return delivered_flops(reading, _seconds(reading))


def _seconds(reading: GpuReading | MigReading) -> float:
    return reading.activity_seconds or 0.0
