"""Floating-point operations a GPU (or a MIG instance) delivered over an interval, per precision.

STAND-IN: the delivered-compute branch (issue 17, part 1) replaces this module with its own
implementation of these two functions and the GPU counter `suanli_gpu_delivered_flops_total`
built from the same increments. Job accounting only relies on the signatures.

This version is per pipe, from GPM: fp64 = the FP64 pipe's activity x the fp64 peak, fp32 = the
FP32 pipe's x the fp32 peak, bf16 = any-tensor activity x the dense bf16 tensor peak (GPM does not
tell tensor precisions apart, so tensor work is counted at the bf16 rate), each scaled by the
held SM clock over the maximum SM clock where both are known. The FP16 pipe has no datasheet peak
in `peak_flops`, so it is left out. A GPU without GPM, or a model without peaks, delivers nothing
known: an empty mapping. A MIG instance's activity is over its own SMs, so its FLOP are weighted
by its share of the GPU (`mig_share.instance_share`); a GPU in MIG mode delivers the sum of its
instances.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.collectors.mig_share import instance_share
from agent.collectors.peak_flops import peak_flops
from agent.hw import GpuReading, MigReading

_PIPES = {"fp64": "pipe_fp64", "fp32": "pipe_fp32", "bf16": "tensor_active"}


def _clock_ratio(reading: GpuReading) -> float:
    held = reading.clocks_hertz.get("sm")
    top = reading.device.max_clocks_hertz.get("sm")
    if held is None or not top:
        return 1.0
    return min(1.0, held / top)


def _flops(
    reading: GpuReading, activity: Mapping[str, float], weight: float, seconds: float
) -> dict[str, float]:
    peaks = peak_flops(reading.device.model)
    scale = weight * _clock_ratio(reading) * seconds
    return {
        precision: activity[key] * peaks[precision] * scale
        for precision, key in _PIPES.items()
        if key in activity and precision in peaks
    }


def mig_delivered_flops(gpu: GpuReading, mig: MigReading, seconds: float) -> dict[str, float]:
    """FLOP per precision that MIG instance `mig` of `gpu` delivered over the last `seconds`."""
    share = instance_share(gpu, mig)
    if share is None or seconds <= 0:
        return {}
    return _flops(gpu, mig.activity, share, seconds)


def delivered_flops(reading: GpuReading, seconds: float) -> dict[str, float]:
    """FLOP per precision the whole GPU delivered over the last `seconds`."""
    if seconds <= 0:
        return {}
    if not reading.mig:
        return _flops(reading, reading.activity, 1.0, seconds)
    total: dict[str, float] = {}
    for mig in reading.mig:
        for precision, flops in mig_delivered_flops(reading, mig, seconds).items():
            total[precision] = total.get(precision, 0.0) + flops
    return total
