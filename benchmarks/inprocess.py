"""In-process measurements of the agent over a FakeNvml: sampling cycles (CPU, wall, NVML calls)
and render cost. Retained memory is in `benchmarks/retained.py`, profiles in
`benchmarks/profiles.py`."""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.app import Agent, build
from agent.config import Config, with_overrides
from agent.exposition import Renderer
from agent.sampler import Snapshot
from benchmarks.nvml_calls import foreground, static_rereads
from benchmarks.scrape import PROMETHEUS_ACCEPT
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import load_scenario
from suanli_sim.host import simulated_parts


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


def checked(snapshot: Snapshot) -> Snapshot:
    for result in snapshot.results:
        if not result.success:
            raise BenchmarkError(f"collector {result.name} failed: {result.error}")
    return snapshot


def measure_cycles(agent: Agent, fake: FakeNvml, cycles: int) -> Cycles:
    """The first `sample_once()` alone, then `cycles` more: CPU and wall per cycle, NVML calls."""
    sampler = agent.sampler
    cpu, wall = time.process_time(), time.perf_counter()
    checked(sampler.sample_once())
    first_cpu, first_wall = time.process_time() - cpu, time.perf_counter() - wall
    first_calls = Counter(fake.calls)
    durations: dict[str, list[float]] = {}
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(cycles):
        for result in checked(sampler.sample_once()).results:
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
    base = agent.sampler.latest or checked(agent.sampler.sample_once())
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
