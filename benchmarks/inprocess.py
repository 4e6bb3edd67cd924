"""In-process measurements: sampling cycles (CPU, wall, NVML calls), render cost, profiles."""

from __future__ import annotations

import atexit
import cProfile
import dataclasses
import gc
import itertools
import pstats
import shutil
import statistics
import sysconfig
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.app import Agent, build
from agent.config import Config, with_overrides
from agent.exposition import Renderer
from agent.sampler import Snapshot
from benchmarks.machine import ROOT
from benchmarks.scrape import PROMETHEUS_ACCEPT
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import load_scenario
from suanli_sim.host import simulated_parts

# Facts that never change while NVML stays initialised, and one-time set-up: called in the first
# cycle, never again.
STATIC_FUNCTIONS = frozenset(
    {
        "nvmlDeviceGetCount",
        "nvmlDeviceGetHandleByIndex",
        "nvmlSystemGetDriverVersion",
        "nvmlSystemGetNVMLVersion",
        "nvmlSystemGetCudaDriverVersion",
        "nvmlSystemGetCudaDriverVersion_v2",
        "nvmlDeviceGetName",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetSerial",
        "nvmlDeviceGetPciInfo",
        "nvmlDeviceGetPciInfo_v3",
        "nvmlDeviceGetVbiosVersion",
        "nvmlDeviceGetArchitecture",
        "nvmlDeviceGetMaxClockInfo",
        "nvmlDeviceGetMaxPcieLinkGeneration",
        "nvmlDeviceGetMaxPcieLinkWidth",
        "nvmlDeviceGetTemperatureThreshold",
        "nvmlDeviceGetPowerManagementDefaultLimit",
        "nvmlDeviceGetPowerManagementLimitConstraints",
        "nvmlDeviceGetComputeMode",
        "nvmlDeviceGetMigMode",
        "nvmlDeviceGetSupportedEventTypes",
        "nvmlDeviceRegisterEvents",
        "nvmlEventSetCreate",
        "nvmlGpmQueryDeviceSupport",
    }
)
# Called by the agent's own background thread (XID events), on its clock, not the sampler's.
BACKGROUND_FUNCTIONS = frozenset({"nvmlEventSetWait", "nvmlEventSetWait_v2"})
FAKE_PREFIX = "suanli_sim.fake_"
HARNESS = "benchmarks."  # our own lambdas: left out of profiles


class BenchmarkError(RuntimeError):
    """A measurement would be meaningless (a collector failed, NVML was called by a render)."""


def build_fake(scenario: str, detail: bool = False, interval: str = "1s") -> tuple[Agent, FakeNvml]:
    """The agent wired as the CLI wires it, over a FakeNvml we keep a hand on."""
    overrides: dict[str, Any] = {
        "interval": interval,
        "backend": "fake",
        "fake_scenario": scenario,
        "collectors.gpu.detail": detail,
    }
    config = with_overrides(Config(), overrides)
    fake = FakeNvml(load_scenario(scenario))
    root = Path(tempfile.mkdtemp(prefix="suanli-bench-host-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    # The Python stand-in for pynvml: the C ABI's callbacks would add the simulator's own
    # marshalling to the agent's cost being measured.
    return build(config, parts=simulated_parts(fake, root, c_abi=False)), fake


@dataclass(frozen=True)
class Cycles:
    gpus: int
    cycles: int
    first_wall_ms: float
    first_cpu_ms: float
    wall_ms: float
    cpu_ms: float
    collector_ms: dict[str, float]
    calls_first: dict[str, int]
    calls_steady: dict[str, float]  # calls per cycle, all GPUs together

    @property
    def calls_per_gpu_first(self) -> float:
        return foreground(self.calls_first) / self.gpus

    @property
    def calls_per_gpu_cycle(self) -> float:
        return foreground(self.calls_steady) / self.gpus

    @property
    def static_rereads(self) -> float:
        """Static-fact calls per cycle after the first: must be 0."""
        return static_rereads(self.calls_steady)


# The agent re-enumerates each GPU's MIG devices every 12 cycles (`MigReader.rescan_cycles`: a
# layout can change without NVML re-initialising); each device found reads its UUID and name,
# on a MIG handle. FakeNvml counts by function only, so those are taken out of the static count.
MIG_RESCAN = "nvmlDeviceGetMigDeviceHandleByIndex"
MIG_RESCAN_READS = ("nvmlDeviceGetUUID", "nvmlDeviceGetName")


def static_rereads(steady: Mapping[str, float]) -> float:
    """Static-fact calls per later cycle on whole GPUs (MIG rescans left out): must be 0."""
    found = sum(v for k, v in steady.items() if k in STATIC_FUNCTIONS)
    rescans = steady.get(MIG_RESCAN, 0.0)
    return found - sum(min(rescans, steady.get(name, 0.0)) for name in MIG_RESCAN_READS)


def foreground(calls: Mapping[str, float]) -> float:
    """Calls made by the sampler or a render, leaving out the event thread's waits."""
    return sum(n for name, n in calls.items() if name not in BACKGROUND_FUNCTIONS)


def _checked(snapshot: Snapshot) -> Snapshot:
    for result in snapshot.results:
        if not result.success:
            raise BenchmarkError(f"collector {result.name} failed: {result.error}")
    return snapshot


def measure_cycles(agent: Agent, fake: FakeNvml, cycles: int) -> Cycles:
    """The first `sample_once()` alone, then `cycles` more: CPU and wall per cycle, NVML calls."""
    sampler = agent.sampler
    cpu, wall = time.process_time(), time.perf_counter()
    _checked(sampler.sample_once())
    first_cpu, first_wall = time.process_time() - cpu, time.perf_counter() - wall
    first_calls = Counter(fake.calls)
    durations: dict[str, list[float]] = {}
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(cycles):
        for result in _checked(sampler.sample_once()).results:
            durations.setdefault(result.name, []).append(result.duration)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    steady = Counter(fake.calls)
    steady.subtract(first_calls)
    return Cycles(
        gpus=len(fake.scenario.gpus),
        cycles=cycles,
        first_wall_ms=first_wall * 1000,
        first_cpu_ms=first_cpu * 1000,
        wall_ms=wall * 1000 / cycles,
        cpu_ms=cpu * 1000 / cycles,
        collector_ms={k: statistics.median(v) * 1000 for k, v in durations.items()},
        calls_first=dict(first_calls),
        calls_steady={k: v / cycles for k, v in steady.items() if v},
    )


@dataclass(frozen=True)
class Render:
    repeats: int
    first_ms: float
    cached_us: float
    gzip_extra_ms: float
    openmetrics_first_ms: float
    nvml_calls: int


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure_render(agent: Agent, fake: FakeNvml, repeats: int) -> Render:
    """Render cost of a new snapshot vs the cached bytes; renders must make no NVML call."""
    base = agent.sampler.latest or _checked(agent.sampler.sample_once())
    calls_before = foreground(fake.calls)
    first: list[float] = []
    cached: list[float] = []
    packed: list[float] = []
    openmetrics: list[float] = []
    for i in range(repeats):
        snapshot = dataclasses.replace(base, sequence=base.sequence + 1 + i)
        first.append(_render_time(agent.renderer, snapshot))
        cached.append(_render_time(agent.renderer, snapshot))
        packed.append(_render_time(agent.renderer, snapshot, gzipped=True))
        openmetrics.append(_render_time(agent.renderer, snapshot, PROMETHEUS_ACCEPT))
    return Render(
        repeats=repeats,
        first_ms=_median_ms(first),
        cached_us=_median_ms(cached) * 1000,
        gzip_extra_ms=_median_ms(packed),
        openmetrics_first_ms=_median_ms(openmetrics),
        nvml_calls=int(foreground(fake.calls) - calls_before),
    )


def _render_time(
    renderer: Renderer, snapshot: Snapshot, accept: str = "", gzipped: bool = False
) -> float:
    start = time.perf_counter()
    renderer.render(snapshot, accept, gzipped)
    return time.perf_counter() - start


# --- retained memory ------------------------------------------------------------------------

FAKE_FILES = "*/suanli_sim/fake_*"
RETAINED_INTERVAL = "60s"  # only the per-collector deadline: tracemalloc slows cycles 2-3x


@dataclass(frozen=True)
class Retained:
    cycles: int  # in each of the two measured stretches
    kib_per_100_cycles: float  # the smaller growth of the two stretches: a leak shows in both
    top_site: str  # the allocation site that grew most in both, "file:line (+KiB)"


def measure_retained(scenario: str, warmup: int, cycles: int) -> Retained:
    """Memory the agent keeps across cycles (tracemalloc), leaving out the fake's own allocations.

    Each cycle samples and renders the text and the gzipped OpenMetrics bytes, as scrapes would.
    Two stretches of `cycles` are compared with the snapshot before each, so one snapshot's
    working set being larger than another's (noise) does not read as a leak.
    """
    agent, _ = build_fake(scenario, interval=RETAINED_INTERVAL)
    tracemalloc.start(1)  # before the warm-up, so every snapshot holds one live working set
    try:
        marks = [_traced_after(agent, n) for n in (warmup, cycles, cycles)]
    finally:
        tracemalloc.stop()
        agent.sampler.stop()
    first, second = _growth(marks[0], marks[1]), _growth(marks[1], marks[2])
    total = min(sum(first.values()), sum(second.values()))
    both = {site: min(first[site], second.get(site, 0)) for site in first}
    site, grown = max(both.items(), key=lambda item: item[1], default=("-", 0))
    return Retained(cycles, total / 1024 * 100 / cycles, f"{site} ({grown / 1024:+.1f} KiB)")


def _growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> dict[str, int]:
    """Bytes each allocation site (outside the fake) gained from `before` to `after`."""
    ignore = [
        tracemalloc.Filter(False, FAKE_FILES),
        tracemalloc.Filter(False, tracemalloc.__file__),
    ]
    diff = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    return {
        f"{_short(stat.traceback[0].filename)}:{stat.traceback[0].lineno}": stat.size_diff
        for stat in diff
    }


def _traced_after(agent: Agent, cycles: int) -> tracemalloc.Snapshot:
    for _ in range(cycles):
        _cycle_and_render(agent)
    gc.collect()
    return tracemalloc.take_snapshot()


def _cycle_and_render(agent: Agent) -> None:
    snapshot = _checked(agent.sampler.sample_once())
    agent.renderer.render(snapshot)
    agent.renderer.render(snapshot, PROMETHEUS_ACCEPT, gzipped=True)


def _short(filename: str) -> str:
    path = Path(filename)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


# --- profiles ---------------------------------------------------------------------------------

_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def module_of(filename: str) -> str:
    """Where a profiled function lives: `suanli_sim.fake_device`, `prometheus_client`, `stdlib`."""
    if filename.startswith("<") or filename == "~":
        return "builtins (C)"
    path = Path(filename).resolve()
    if path.is_relative_to(ROOT):
        return ".".join(path.relative_to(ROOT).with_suffix("").parts)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if path.is_relative_to(_STDLIB):
        return "stdlib"
    return path.name


@dataclass(frozen=True)
class Profile:
    shares: dict[str, float]  # module -> percent of own (tottime) time, largest first
    top: list[tuple[str, float, int]]  # (function, percent of tottime, calls)

    @property
    def fake_percent(self) -> float:
        return sum(v for k, v in self.shares.items() if k.startswith(FAKE_PREFIX))


def profile(action: Callable[[], object], repeats: int) -> Profile:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        action()
    profiler.disable()
    entries: dict[tuple[str, int, str], Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    entries = {k: row for k, row in entries.items() if not module_of(k[0]).startswith(HARNESS)}
    total = sum(row[2] for row in entries.values()) or 1.0
    shares: Counter[str] = Counter()
    for (filename, _, _), row in entries.items():
        shares[module_of(filename)] += 100 * row[2] / total
    ranked = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:15]
    top = [
        (f"{module_of(f)}:{name}" if line else name, 100 * row[2] / total, row[1])
        for (f, line, name), row in ranked
    ]
    return Profile(dict(shares.most_common()), top)


def profile_cycle(agent: Agent, repeats: int) -> Profile:
    """Every collector's `collect()` on this thread (sampler worker threads are not profiled)."""
    return profile(lambda: [collector.collect() for collector in agent.collectors], repeats)


def profile_first_render(agent: Agent, repeats: int) -> Profile:
    base = agent.sampler.latest or _checked(agent.sampler.sample_once())
    sequence = itertools.count(base.sequence + 10_000)
    return profile(
        lambda: agent.renderer.render(dataclasses.replace(base, sequence=next(sequence))),
        repeats,
    )
