"""Memory the agent keeps from one sampling cycle to the next, by tracemalloc."""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from agent.app import Agent
from benchmarks.inprocess import build_fake, checked
from benchmarks.machine import ROOT
from benchmarks.scrape import PROMETHEUS_ACCEPT

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
    snapshot = checked(agent.sampler.sample_once())
    agent.renderer.render(snapshot)
    agent.renderer.render(snapshot, PROMETHEUS_ACCEPT, gzipped=True)


def _short(filename: str) -> str:
    path = Path(filename)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
