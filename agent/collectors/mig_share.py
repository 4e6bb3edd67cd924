"""A MIG instance's share of its GPU: its SMs over the SMs the GPU offers in MIG mode.

The instance's SM count is NVML's (`multiprocessorCount` of the MIG device's attributes). The
GPU's is the SM count of its full-size GPU instance profile (7g), from NVIDIA's MIG user guide and
`nvidia-smi mig -lgip` listings; on an A100 that is 98 of the die's 108 SMs, because MIG mode leaves
10 unused. The captures agree for the profiles they show: H100 SXM5 3g.40gb/2g.20gb/1g.10gb have
60/32/16 SMs, so one 1g.10gb is 16/132 of an H100. A model not listed here has no share: unknown,
so nothing is charged to its instances (everything goes to `job_id="none"`), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.hw import GpuReading, MigReading

# NVML product name -> SMs of the full-size MIG profile
MIG_FULL_SMS: Mapping[str, int] = {
    "NVIDIA H100 80GB HBM3": 132,  # 7g.80gb
    "NVIDIA H800": 132,  # H100 silicon, same profiles
    "NVIDIA H200": 132,  # 7g.141gb
    "NVIDIA H20": 78,  # 7g.96gb: the H20's 78 SMs
    "NVIDIA A100-SXM4-80GB": 98,  # 7g.80gb
    "NVIDIA A100-SXM4-40GB": 98,  # 7g.40gb
}


def instance_share(gpu: GpuReading, mig: MigReading) -> float | None:
    """The fraction of `gpu` that instance `mig` is (0..1); None when either count is unknown."""
    full = MIG_FULL_SMS.get(gpu.device.model)
    sms = mig.instance.multiprocessors
    if full is None or sms is None or sms <= 0:
        return None
    return min(1.0, sms / full)
