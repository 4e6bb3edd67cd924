"""Dense peak throughput per GPU model, in FLOP/s, for efficiency ratios (activity x peak).

Values are NVIDIA datasheet figures without sparsity (sparse / 2), as collected with their
sources in `../shared/reference/gpu-models.md`, table B. `fp64` is the vector (non-tensor)
rate. A precision with no citable figure is left out, and so is a model not in the table:
an unknown peak is absent, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping

TERA = 1e12

_H100_SXM = {"fp64": 33.5, "fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp8": 1978.9}

# Keys are the product names NVML reports (nvmlDeviceGetName).
PEAK_TFLOPS: Mapping[str, Mapping[str, float]] = {
    # [S2] [S3]
    "NVIDIA H100 80GB HBM3": _H100_SXM,
    # [S13]: the H200's compute engine is the H100 SXM's
    "NVIDIA H200": _H100_SXM,
    # [S9] [S10]: H100 silicon with FP64 cut to 1 TFLOPS; low-precision AI compute as H100
    "NVIDIA H800": {"fp64": 1.0, "tf32": 494.7, "bf16": 989.4, "fp8": 1978.9},
    # [S11] (third-party; no NVIDIA datasheet found): the BF16 figure is the FP16 one
    "NVIDIA H20": {"fp64": 1.0, "fp32": 44.0, "tf32": 74.0, "bf16": 148.0},
    # [S4] [S14]: no FP8 on Ampere
    "NVIDIA A100-SXM4-80GB": {"fp64": 9.7, "fp32": 19.5, "tf32": 156.0, "bf16": 312.0},
    "NVIDIA A100-SXM4-40GB": {"fp64": 9.7, "fp32": 19.5, "tf32": 156.0, "bf16": 312.0},
    # [S6] [S7]
    "NVIDIA L40S": {"fp32": 91.6, "tf32": 183.0, "bf16": 362.0, "fp8": 733.0},
    # [S18] [S19]: BF16 and FP8 with FP32 accumulate
    "NVIDIA GeForce RTX 4090": {
        "fp64": 1.29,
        "fp32": 82.6,
        "tf32": 82.6,
        "bf16": 165.2,
        "fp8": 330.3,
    },
}


# Peaks of the pipes GPM measures that `PEAK_TFLOPS` (the `suanli_gpu_peak_flops` family) does
# not name, for `agent.collectors.delivered`: `fp64_tensor` (FP64 on tensor cores, GPM's DFMA
# tensor activity), `fp16_vector` (non-tensor FP16/BF16, GPM's FP16 pipe) and `int8` (IMMA tensor
# cores; integer operations per second, not FLOP/s). Same sources and rules as above.
_H100_SXM_PIPES = {"fp64_tensor": 66.9, "fp16_vector": 133.8, "int8": 1978.9}
PIPE_PEAK_TFLOPS: Mapping[str, Mapping[str, float]] = {
    # [S2] (VFMA/matrix table: FP64 matrix 66.9, FP16 VFMA 133.8, INT8 matrix 1978.9 dense);
    # [S3] (FP64 Tensor 67, INT8 Tensor 3958 sparse)
    "NVIDIA H100 80GB HBM3": _H100_SXM_PIPES,
    # [S13]: the H200's compute engine is the H100 SXM's
    "NVIDIA H200": _H100_SXM_PIPES,
    # [S11]: INT8 296 TOPS
    "NVIDIA H20": {"int8": 296.0},
    # [S4] [S14]: FP64 Tensor Core 19.5
    "NVIDIA A100-SXM4-80GB": {"fp64_tensor": 19.5},
    "NVIDIA A100-SXM4-40GB": {"fp64_tensor": 19.5},
}

# Streaming multiprocessors of the whole GPU, for a MIG instance's share of the peak: [S2]
# (132 SMs on the H100 SXM5); the H200 as the H100 SXM [S13] (its 7g MIG profile lists 132 SMs).
SM_COUNT: Mapping[str, int] = {"NVIDIA H100 80GB HBM3": 132, "NVIDIA H200": 132}


def pipe_peak_flops(model: str) -> dict[str, float]:
    """{pipe peak: FLOP/s (int8: operations/s)}: `peak_flops` plus `PIPE_PEAK_TFLOPS`."""
    extra = PIPE_PEAK_TFLOPS.get(model, {})
    return {**peak_flops(model), **{key: tflops * TERA for key, tflops in extra.items()}}


def peak_flops(model: str) -> dict[str, float]:
    """{precision: FLOP/s} for an NVML product name; empty for a model not in the table."""
    return {precision: tflops * TERA for precision, tflops in PEAK_TFLOPS.get(model, {}).items()}
