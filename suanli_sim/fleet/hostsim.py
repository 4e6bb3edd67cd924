"""Simulated host readers: CPU time, memory and load, and RAPL energy, per simulated node.

Every simulated node runs on this one machine, so its host collector cannot read /proc: these
readers stand in for `HostReader` and `RaplReader` (subclasses, so the real collectors use them
unchanged) with values that are a pure function of the node's seed, its load and time. RAPL
readings go through `RaplReader`'s own wrap-around handling: the simulated register wraps at
`max_energy_range_uj` like a real one. Shapes (assumed, not captured): dual-socket servers of
112-192 cores, 1-2 TiB of memory, 120-350 W per CPU package, 20-45 W per DRAM domain.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path

from agent.hw.host import HostReader, HostReading
from agent.hw.rapl import EnergyReading, RaplReader, RaplZone

NO_SYSFS = "/nonexistent/suanli-simulated-sysfs"  # no power meter, no real RAPL
CPUS = ((224, 112), (256, 128), (384, 192))  # (logical, physical): 2x Xeon 8480+, 2x 64c, 2x 96c
MEMORY_GIB = (1024, 1536, 2048)
MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
MAX_RANGE_UJ = 262_143_328_850  # a typical package's max_energy_range_uj
PERIOD_S = 300.0  # how fast the simulated load wanders


class _Wave:
    """A rate f(t) = mean * (1 + depth * sin(w t + phase)) and its exact integral (so counters
    made from it never go down)."""

    def __init__(self, rng: random.Random, mean: float, depth: float) -> None:
        self.mean, self.depth = mean, depth
        self.phase = rng.uniform(0, 2 * math.pi)
        self.w = 2 * math.pi / (PERIOD_S * rng.uniform(0.7, 1.4))

    def rate(self, t: float) -> float:
        return self.mean * (1 + self.depth * math.sin(self.w * t + self.phase))

    def integral(self, t: float) -> float:
        wobble = (math.cos(self.phase) - math.cos(self.w * t + self.phase)) / self.w
        return self.mean * (t + self.depth * wobble)


class SimHostReader(HostReader):
    """CPU time by mode, memory and load of a simulated node whose CPUs are `load` busy."""

    def __init__(
        self, seed: int, load: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(procfs=NO_SYSFS)
        rng = random.Random(f"host:{seed}")
        self.logical, self.physical = rng.choice(CPUS)
        self.memory = rng.choice(MEMORY_GIB) * 2**30
        self.uptime = rng.uniform(86_400, 90 * 86_400)  # seconds since boot when we start
        self._busy = _Wave(rng, min(0.75, load), 0.3)  # busy share stays below 1
        self._used_memory = min(0.9, 0.08 + load * rng.uniform(0.8, 1.6))
        self._monotonic = monotonic
        self._start = monotonic()

    def read(self) -> HostReading:
        t = self._monotonic() - self._start
        elapsed = (self.uptime + t) * self.logical  # CPU-seconds since boot
        busy = self._busy.integral(self.uptime + t) * self.logical
        shares = {"user": 0.82, "system": 0.12, "softirq": 0.03, "irq": 0.01, "nice": 0.02}
        seconds = {mode: busy * share for mode, share in shares.items()}
        seconds["iowait"] = elapsed * 0.002
        seconds["steal"] = 0.0
        seconds["idle"] = max(0.0, elapsed - sum(seconds.values()))
        rate = self._busy.rate(self.uptime + t)
        used = self.memory * self._used_memory * (0.97 + 0.03 * rate)
        return HostReading(
            cpu_seconds={mode: seconds[mode] for mode in MODES},
            memory_total_bytes=float(self.memory),
            memory_available_bytes=float(self.memory - used),
            load1=round(rate * self.logical * 0.9, 2),
        )

    def cpu_counts(self) -> tuple[int, int]:
        return self.logical, self.physical


class SimRapl(RaplReader):
    """Package and DRAM energy of two sockets, a package drawing 120 W idle to ~350 W busy."""

    def __init__(
        self, seed: int, load: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(NO_SYSFS, monotonic)
        rng = random.Random(f"rapl:{seed}")
        self._start = monotonic()
        self._waves: dict[Path, tuple[_Wave, float]] = {}
        zones = []
        for socket in ("0", "1"):
            package = RaplZone(Path(f"/sim/intel-rapl:{socket}"), "package", socket, MAX_RANGE_UJ)
            dram = RaplZone(Path(f"/sim/intel-rapl:{socket}:0"), "dram", socket, MAX_RANGE_UJ)
            watts = 120 + 230 * load + rng.uniform(-10, 10)
            self._waves[package.path] = (_Wave(rng, watts, 0.1), rng.uniform(0, MAX_RANGE_UJ))
            dram_watts = 20 + 25 * load + rng.uniform(-3, 3)
            self._waves[dram.path] = (_Wave(rng, dram_watts, 0.1), rng.uniform(0, MAX_RANGE_UJ))
            zones += [package, dram]
        self.zones = zones

    def read(self) -> list[EnergyReading]:
        t = self._monotonic() - self._start
        readings = []
        for zone in self.zones:
            wave, offset = self._waves[zone.path]
            raw = int(offset + wave.integral(t) * 1e6) % zone.max_range_uj
            readings.append(self._advance(zone, raw))
        return readings
