"""What the SMs, tensor cores and DRAM of a fake GPU (or MIG instance) do: the GPM ground truth.

Each tick (`fake_workload.TICK`) a workload has an activity vector: the fraction of that tick in
which each GPM metric's unit was active (graphics engine, SMs, warps resident, tensor pipes,
DRAM bandwidth, FP pipes). The graphics engine is active exactly as often as NVML's
`utilization.gpu` says; every other fraction is a share of SM activity typical of the profile
(training on H100: SM 0.76-0.90, occupancy 0.4-0.6, tensor 0.36-0.56, DRAM 0.3-0.5; memory-bound:
DRAM ~0.8, SM ~0.5; idle: 0). `integral(t)` is the exact cumulative active time (seconds) per
metric, so the average over [t1, t2] is `(integral(t2) - integral(t1)) / (t2 - t1)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from suanli_sim.binding import pynvml
from suanli_sim.fake_workload import CHUNK, TICK, Workload, unit

P = pynvml
# GPM metric id -> name (NVML_GPM_METRIC_<NAME>, lower case): the metrics the fake models
METRICS: dict[int, str] = {
    P.NVML_GPM_METRIC_GRAPHICS_UTIL: "graphics_util",
    P.NVML_GPM_METRIC_SM_UTIL: "sm_util",
    P.NVML_GPM_METRIC_SM_OCCUPANCY: "sm_occupancy",
    P.NVML_GPM_METRIC_INTEGER_UTIL: "integer_util",
    P.NVML_GPM_METRIC_ANY_TENSOR_UTIL: "any_tensor_util",
    P.NVML_GPM_METRIC_DFMA_TENSOR_UTIL: "dfma_tensor_util",
    P.NVML_GPM_METRIC_HMMA_TENSOR_UTIL: "hmma_tensor_util",
    P.NVML_GPM_METRIC_DMMA_TENSOR_UTIL: "dmma_tensor_util",
    P.NVML_GPM_METRIC_IMMA_TENSOR_UTIL: "imma_tensor_util",
    P.NVML_GPM_METRIC_DRAM_BW_UTIL: "dram_bw_util",
    P.NVML_GPM_METRIC_FP64_UTIL: "fp64_util",
    P.NVML_GPM_METRIC_FP32_UTIL: "fp32_util",
    P.NVML_GPM_METRIC_FP16_UTIL: "fp16_util",
}
NAMES = tuple(METRICS.values())
SLOT = {name: i for i, name in enumerate(NAMES)}
_DRAM = SLOT["dram_bw_util"]
ZERO = (0.0,) * len(NAMES)
Vector = tuple[float, ...]


@dataclass(frozen=True)
class Shape:
    """Activity of a profile as (base, spread) pairs; a unit draws base + spread * u."""

    sm: tuple[float, float]  # share of graphics-active time with SMs busy
    occupancy: tuple[float, float]  # the rest are shares of SM activity
    tensor: tuple[float, float]
    dram: tuple[float, float]  # multiple of NVML's memory utilisation (controller busy)
    fp16: float
    fp32: float
    fp64: float
    integer: float
    imma: float  # share of tensor activity on integer (IMMA) pipes; the rest HMMA


# Per-type tensor activity follows the real H200's probe (../shared/reference/h200/README.md,
# "Which GPM metric lights up for which kind of work"): bf16, fp16, tf32 and fp8 matrix work is
# HMMA, int8 IMMA, fp64 DFMA, and ANY_TENSOR is their sum; a pure bf16 GEMM holds tensor activity
# at 0.97 of SM activity (0.928 / 0.956) with the FP32 and FP16 pipes at ~0. Training and
# inference are not pure GEMMs: their tensor shares of SM activity (below that GEMM's), their
# FP32/FP16 pipe shares (element-wise work: norms, softmax, optimizer) and inference's 30 % of
# tensor work on int8 (IMMA) are assumptions; no profile does fp64 (DFMA stays 0).
SHAPES = {
    "training": Shape((0.82, 0.08), (0.5, 0.15), (0.48, 0.14), (1.05, 0.1), 0.06, 0.12, 0, 0.15, 0),
    "inference": Shape((0.7, 0.1), (0.3, 0.15), (0.3, 0.15), (1.2, 0.2), 0.08, 0.12, 0, 0.1, 0.3),
    "memory-bound": Shape(
        (0.62, 0.1), (0.7, 0.1), (0.04, 0.02), (0.95, 0.08), 0.02, 0.2, 0, 0.25, 0
    ),
}


class Integrator:
    """Exact integral over time of a per-tick constant vector, with checkpoints every CHUNK
    ticks (reading a later time costs the ticks since the last read)."""

    def __init__(self, rates: Callable[[int], Vector]) -> None:
        self.rates = rates
        self._checkpoints: list[Vector] = [ZERO]
        self._last: tuple[int, Vector] = (0, ZERO)

    def _advance(self, start: int, cum: Vector, stop: int) -> Vector:
        acc = list(cum)
        for k in range(start, stop):
            for i, v in enumerate(self.rates(k)):
                acc[i] += v * TICK
        return tuple(acc)

    def _at_tick(self, k: int) -> Vector:
        while len(self._checkpoints) <= k // CHUNK:
            base = len(self._checkpoints) - 1
            start, cum = base * CHUNK, self._checkpoints[-1]
            if start <= self._last[0] <= start + CHUNK:  # summed already: continue, same order
                start, cum = self._last
            self._checkpoints.append(self._advance(start, cum, (base + 1) * CHUNK))
        start, cum = (k // CHUNK) * CHUNK, self._checkpoints[k // CHUNK]
        last_k, last = self._last
        if start <= last_k <= k:
            start, cum = last_k, last
        cum = self._advance(start, cum, k)
        self._last = (k, cum)
        return cum

    def integral(self, t: float) -> Vector:
        k = int(t // TICK)
        frac = t - k * TICK
        return tuple(c + r * frac for c, r in zip(self._at_tick(k), self.rates(k), strict=True))


class Activity:
    """The activity of one workload (a whole GPU, or one MIG instance)."""

    def __init__(self, work: Workload, salt: int) -> None:
        self.work = work
        self.salt = salt
        self.integrator = Integrator(self.rates)

    def rates(self, k: int) -> Vector:
        tick = self.work.tick(k)
        shape = SHAPES.get(self.work.profile)
        if shape is None or tick.util <= 0:
            return ZERO
        u = [unit(self.salt, k, i) for i in range(4)]
        graphics = tick.util / 100.0
        sm = graphics * (shape.sm[0] + shape.sm[1] * u[0])
        tensor = sm * (shape.tensor[0] + shape.tensor[1] * u[2])
        values = {
            "graphics_util": graphics,
            "sm_util": sm,
            "sm_occupancy": sm * (shape.occupancy[0] + shape.occupancy[1] * u[1]),
            "integer_util": sm * shape.integer,
            "any_tensor_util": tensor,
            "hmma_tensor_util": tensor * (1 - shape.imma),
            "imma_tensor_util": tensor * shape.imma,
            "dram_bw_util": tick.mem_util / 100.0 * (shape.dram[0] + shape.dram[1] * u[3]),
            "fp64_util": sm * shape.fp64,
            "fp32_util": sm * shape.fp32,
            "fp16_util": sm * shape.fp16,
        }
        return tuple(min(1.0, max(0.0, values.get(name, 0.0))) for name in NAMES)

    def integral(self, t: float) -> Vector:
        return self.integrator.integral(t)

    def rates_at(self, t: float) -> Vector:
        return self.rates(int(t // TICK))


class CombinedActivity:
    """A MIG-enabled GPU as a whole: its instances' activity weighted by their share of the
    GPU's SMs (DRAM: by their share of its memory eighths)."""

    def __init__(self, parts: Sequence[tuple[Activity, float, float]]) -> None:
        self.parts = parts  # (activity, SM share, memory share)

    def _mix(self, vectors: Sequence[Vector]) -> Vector:
        out = [0.0] * len(NAMES)
        for vector, (_, sm_share, memory_share) in zip(vectors, self.parts, strict=True):
            for i, v in enumerate(vector):
                out[i] += v * (memory_share if i == _DRAM else sm_share)
        return tuple(out)

    def integral(self, t: float) -> Vector:
        return self._mix([a.integral(t) for a, _, _ in self.parts])

    def rates_at(self, t: float) -> Vector:
        return self._mix([a.rates_at(t) for a, _, _ in self.parts])


def average(
    source: Activity | CombinedActivity, t1: float, c1: Vector, t2: float, c2: Vector
) -> Vector:
    """Mean activity between two readings of `integral`; at t1 == t2 the activity at that time."""
    if t2 == t1:
        return source.rates_at(t1)
    return tuple((b - a) / (t2 - t1) for a, b in zip(c1, c2, strict=True))
