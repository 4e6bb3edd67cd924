"""Deterministic workload model of one fake GPU: values as functions of (seed, gpu, time).

Time is cut into ticks of `TICK` seconds; within a tick every instantaneous value is constant,
so counters are exact integrals: energy (mJ) grows by power x time, the power-cap violation
counter (ns) by the time spent capped, NVLink counters (KiB) by rate x time. Cumulative sums are
kept at checkpoints every `CHUNK` ticks, so reading time t costs O(ticks since the last read)
for a clock that moves forward, and at most O(CHUNK) for a clock that jumps back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from suanli_sim.fake_models import MIB, GpuModel

TICK = 1.0
WORKLOADS = ("idle", "training", "inference", "memory-bound")
CHUNK = 256
TOTALS = 8  # the counters of Workload.totals
CONTINUOUS = frozenset({0, 1, 2, 6, 7})  # rates, integrated within a tick; the rest are events
TICK_CACHE = 20  # ticks kept per GPU: a 15 s sampling interval reads ~16 new ones
IDLE_JOB_MEMORY_SHARE = 0.5  # assumed: a job on a GPU whose workload is `idle`
NVLINK_LINK_BYTES_PER_S = 26.562e9  # per link, `nvidia-smi nvlink -s` in the H100/H800 captures
_MASK = (1 << 64) - 1


def mix(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64 finaliser over a running state)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & _MASK
        h ^= h >> 31
    return h


def unit(*values: int) -> float:
    """A deterministic number in [0, 1) for the given integers."""
    return (mix(*values) >> 11) / float(1 << 53)


@dataclass(frozen=True, slots=True)
class Tick:
    """Instantaneous values of one tick."""

    util: int  # percent
    mem_util: int  # percent
    power_w: float
    capped: bool  # software power cap engaged
    mem_used_mib: int
    pcie_tx_kbs: int
    pcie_rx_kbs: int
    nvlink_frac: float  # share of each link's bandwidth in use
    pcie_replays: int  # events in this tick
    ecc_corrected: int
    nvlink_replays: int


@dataclass(frozen=True)
class Windows:
    """Windows [at, until) that change the workload: thermal slowdown, degraded PCIe, and for
    a job-driven GPU the times its jobs compute (`busy`; None: always)."""

    thermal: tuple[tuple[float, float | None], ...] = ()
    pcie: tuple[tuple[float, float | None], ...] = ()
    busy: tuple[tuple[float, float | None], ...] | None = None

    @staticmethod
    def hit(windows: tuple[tuple[float, float | None], ...], t: float) -> bool:
        return any(at <= t and (until is None or t < until) for at, until in windows)


class Workload:
    """One GPU's workload over simulated time, for a profile in WORKLOADS."""

    def __init__(
        self,
        profile: str,
        model: GpuModel,
        seed: int,
        gpu: int,
        limit_w: float,
        mig: bool,
        windows: Windows | None = None,
    ) -> None:
        self.profile = profile
        self.windows = windows or Windows()
        self.model = model
        self.seed = seed
        self.gpu = gpu
        self.limit_w = limit_w
        self.mig = mig
        self.usable_mib = model.memory_total_mib - model.memory_reserved_mib
        self.idle_w = model.idle_power_w + 12.0 * unit(seed, gpu, 1) - 4.0
        self._checkpoints: list[tuple[float, ...]] = [(0.0,) * TOTALS]
        self._last: tuple[int, tuple[float, ...]] = (0, (0.0,) * TOTALS)
        self._ticks: dict[int, Tick] = {}
        self._totals: tuple[float, tuple[float, ...]] = (-1.0, ())
        self._prefix = mix(seed, gpu)
        self._bases: dict[int, int] = {}

    def _u(self, k: int, stream: int) -> float:
        """unit(seed, gpu, k, stream), with the (seed, gpu, k) part hashed once per tick."""
        base = self._bases.get(k)
        if base is None:
            if len(self._bases) > 16:  # a tick asks for a few neighbouring k only
                self._bases.clear()
            base = self._bases[k] = mix(self._prefix, k)
        return (mix(base, stream) >> 11) / float(1 << 53)

    def _smooth(self, k: int, stream: int, period: int) -> float:
        """Value noise in [0, 1) that wanders over `period` ticks."""
        k0, frac = divmod(k, period)
        a, b = self._u(k0, stream + 100), self._u(k0 + 1, stream + 100)
        s = frac / period
        return a + (b - a) * s * s * (3 - 2 * s)

    def tick(self, k: int) -> Tick:
        """Tick k's values; the last TICK_CACHE ticks are kept, as the energy integral, the GPM
        integral and the per-process samples each walk the ticks since their last read."""
        found = self._ticks.get(k)
        if found is None:
            if len(self._ticks) >= TICK_CACHE:
                self._ticks.clear()
            found = self._ticks[k] = self._compute(k)
        return found

    def _compute(self, k: int) -> Tick:
        busy = self.windows.busy
        shape = self._shape(k) if busy is None or Windows.hit(busy, k * TICK) else None
        return self._idle(k) if shape is None else self._busy(k, shape)

    def _shape(self, k: int) -> tuple[int, int, float, float, float] | None:
        if self.profile == "training":
            return self._training(k)
        if self.profile == "inference":
            return self._inference(k)
        if self.profile == "memory-bound":
            return self._memory_bound(k)
        return None

    def memory_share(self, k: int) -> float:
        """The share of usable memory the profile's work holds in tick k, even while it waits
        (what an allocated job keeps); an `idle` profile's jobs hold IDLE_JOB_MEMORY_SHARE."""
        shape = self._shape(k)
        return IDLE_JOB_MEMORY_SHARE if shape is None else shape[3]

    def idle_used_mib(self) -> int:
        return self.model.mig_idle_used_mib if self.mig else int(self._u(0, 2) < 0.5)

    def _idle(self, k: int) -> Tick:
        used = self.idle_used_mib()
        return Tick(
            0,
            0,
            self.idle_w + 1.5 * self._u(k, 3),
            False,
            used,
            int(300 + 300 * self._u(k, 4)),
            int(300 + 600 * self._u(k, 5)),
            0.0,
            0,
            0,
            0,
        )

    def _training(self, k: int) -> tuple[int, int, float, float, float]:
        """util %, memory util %, share of power limit, memory share, NVLink share."""
        if k % 600 >= 585:  # a 15 s checkpoint pause every 10 minutes
            return int(6 * self._u(k, 6)), 2, 0.2, 0.82, 0.0
        util = 100 if self._u(k, 7) < 0.8 else 93 + int(7 * self._u(k, 8))
        share = 0.86 + 0.12 * self._smooth(k, 9, 15) + 0.012 * self._u(k, 10)
        memory = 0.78 + 0.12 * self._u(0, 11) + 0.01 * self._smooth(k, 12, 30)
        return (
            util,
            25 + int(20 * self._smooth(k, 13, 20)),
            share,
            memory,
            0.15 + 0.35 * self._smooth(k, 14, 5),
        )

    def _inference(self, k: int) -> tuple[int, int, float, float, float]:
        phase = 2 * math.pi * (k / 300.0 + self._u(0, 15))
        load = 0.5 + 0.35 * math.sin(phase) + 0.3 * (self._u(k, 16) - 0.5)
        util = max(0, min(100, int(100 * load))) if self._u(k, 17) > 0.05 else 0
        memory = 0.55 + 0.3 * self._u(0, 18) + 0.05 * self._smooth(k, 19, 60)
        return util, util // 2, 0.15 + 0.6 * util / 100, memory, 0.02 + 0.08 * util / 100

    def _memory_bound(self, k: int) -> tuple[int, int, float, float, float]:
        util = 60 + int(20 * self._smooth(k, 20, 10))
        mem_util = 70 + int(25 * self._smooth(k, 21, 10))
        return (
            util,
            mem_util,
            0.65 + 0.15 * self._smooth(k, 22, 15),
            0.6 + 0.2 * self._u(0, 23),
            0.05 + 0.15 * self._smooth(k, 24, 10),
        )

    def _busy(self, k: int, shape: tuple[int, int, float, float, float]) -> Tick:
        util, mem_util, share, memory, nvlink = shape
        if Windows.hit(self.windows.thermal, k * TICK):
            share *= 0.8  # thermal slowdown lowers clocks and so power
        capped = share >= 0.975
        power = max(self.idle_w, min(share, 0.99) * self.limit_w)
        busy = util > 0
        replay_p = 0.05 if Windows.hit(self.windows.pcie, k * TICK) else 0.0005
        return Tick(
            util,
            mem_util,
            power,
            capped,
            int(memory * self.usable_mib),
            int((20_000 + 80_000 * self._u(k, 25)) * busy),
            int((100_000 + 500_000 * self._u(k, 26)) * busy),
            nvlink if self.model.nvlink_links else 0.0,
            int(self._u(k, 27) < replay_p),
            int(self._u(k, 28) < 0.0002),
            int(self.model.nvlink_links > 0 and self._u(k, 29) < 0.001),
        )

    # --- counters -----------------------------------------------------------------------
    def _rates(self, k: int) -> tuple[float, ...]:
        """Per-tick increments: mJ, capped ns, NVLink bytes/link, replays, ECC, NVLink replays,
        PCIe bytes sent and received."""
        t = self.tick(k)
        return (
            t.power_w * 1000.0 * TICK,
            1e9 * TICK * t.capped,
            t.nvlink_frac * NVLINK_LINK_BYTES_PER_S * TICK,
            float(t.pcie_replays),
            float(t.ecc_corrected),
            float(t.nvlink_replays),
            t.pcie_tx_kbs * 1024.0 * TICK,
            t.pcie_rx_kbs * 1024.0 * TICK,
        )

    def _cum_at_tick(self, k: int) -> tuple[float, ...]:
        """Sum of increments of ticks 0..k-1."""
        while len(self._checkpoints) <= k // CHUNK:
            base = len(self._checkpoints) - 1
            start, cum = base * CHUNK, self._checkpoints[-1]
            if start <= self._last[0] <= start + CHUNK:  # summed already: continue, same order
                start, cum = self._last
            self._checkpoints.append(self._advance(start, cum, (base + 1) * CHUNK))
        last_k, last = self._last
        start, cum = (k // CHUNK) * CHUNK, self._checkpoints[k // CHUNK]
        if start <= last_k <= k:
            start, cum = last_k, last
        cum = self._advance(start, cum, k)
        self._last = (k, cum)
        return cum

    def _advance(self, start: int, cum: tuple[float, ...], stop: int) -> tuple[float, ...]:
        acc = list(cum)
        for j in range(start, stop):
            for i, v in enumerate(self._rates(j)):
                acc[i] += v
        return tuple(acc)

    def totals(self, t: float) -> tuple[float, ...]:
        """Cumulative (energy mJ, capped ns, NVLink bytes per link, PCIe replays, ECC, NVLink
        replays, PCIe tx and rx bytes) at time t; rates integrate continuously, events count
        whole ticks. The last answer is kept: one cycle asks for the same t once per counter."""
        if self._totals[0] == t:
            return self._totals[1]
        k = int(t // TICK)
        cum = self._cum_at_tick(k)
        rates = self._rates(k)
        frac = (t - k * TICK) / TICK
        pairs = enumerate(zip(cum, rates, strict=True))
        found = tuple(c + r * frac if i in CONTINUOUS else c for i, (c, r) in pairs)
        self._totals = (t, found)
        return found

    def temperature(self, k: int, memory: bool) -> int:
        """GPU or memory temperature: linear in power between the captured idle and load points."""
        idle_c, load_c, mem_idle_c, mem_load_c = self.model.temps_c
        low, high = (mem_idle_c, mem_load_c) if memory else (idle_c, load_c)
        span = max(1.0, self.model.load_ref_w - self.model.idle_power_w)
        share = (self.tick(k).power_w - self.model.idle_power_w) / span
        share = share if share <= 1 else 1 + 0.3 * (share - 1)  # flattens beyond the capture
        offset = 3.0 * unit(self.seed, self.gpu, 30 + memory) - 1.0
        return max(low - 2, round(low + (high - low) * share + offset))

    def memory_bytes(self, k: int) -> int:
        return self.tick(k).mem_used_mib * MIB
