"""cProfile of the agent's sampling cycle and first render: own time by module, top functions."""

from __future__ import annotations

import cProfile
import dataclasses
import itertools
import pstats
import sysconfig
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.app import Agent
from benchmarks.inprocess import checked
from benchmarks.machine import ROOT

FAKE_PREFIX = "suanli_sim.fake_"
HARNESS = "benchmarks."  # our own lambdas: left out of profiles
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
    base = agent.sampler.latest or checked(agent.sampler.sample_once())
    sequence = itertools.count(base.sequence + 10_000)
    return profile(
        lambda: agent.renderer.render(dataclasses.replace(base, sequence=next(sequence))),
        repeats,
    )
