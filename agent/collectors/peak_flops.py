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


def peak_flops(model: str) -> dict[str, float]:
    """{precision: FLOP/s} for an NVML product name; empty for a model not in the table."""
    return {precision: tflops * TERA for precision, tflops in PEAK_TFLOPS.get(model, {}).items()}
