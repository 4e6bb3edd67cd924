"""Wiring: config -> collectors -> sampler -> renderer; shared by the CLI, tests and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from agent.collectors import registry
from agent.collectors.base import Collector, Context
from agent.config import Config
from agent.dcgm_compat import DcgmCompat
from agent.exposition import Renderer
from agent.metrics import Sample
from agent.parts import Parts
from agent.sampler import CollectorResult, Sampler, Snapshot

__all__ = ["Agent", "Parts", "build"]


@dataclass
class Agent:
    GPM_WINDOW_S: ClassVar[float] = 1.0  # between --once's two samples: GPM's interval

    config: Config
    collectors: list[Collector]
    sampler: Sampler
    renderer: Renderer

    def exposition(self, advance: Callable[[float], None] | None = None) -> str:
        """One sample, rendered as Prometheus text: what `--once` prints.

        GPM activity needs two samples a known interval apart, so a first sample is taken,
        then `advance(GPM_WINDOW_S)`, then the sample printed. By default `advance` sleeps (real
        NVML; skipped while NVML is down: no GPU to measure); the simulator moves its clock.
        """
        first = self.sampler.sample_once()
        if advance is not None:
            advance(self.GPM_WINDOW_S)
        elif any(s.spec.name == "suanli_nvml_up" and s.value == 1 for s in self._samples(first)):
            time.sleep(self.GPM_WINDOW_S)
        snapshot = self.sampler.sample_once()
        body, _ = self.renderer.render(snapshot)
        return body.decode()

    @staticmethod
    def _samples(snapshot: Snapshot) -> Iterator[Sample]:
        return (sample for result in snapshot.results for sample in result.samples)

    def failures(self) -> list[CollectorResult]:
        """The collectors that failed in the latest sample."""
        latest = self.sampler.latest
        return [] if latest is None else [r for r in latest.results if not r.success]


def build(config: Config, *, parts: Parts | None = None, hostname: str | None = None) -> Agent:
    """Make the collectors the configuration enables (`agent.collectors.registry`), a sampler
    over them and a renderer, reading the node through `parts` (default: the real node)."""
    parts = parts or Parts()
    context = Context(
        config.interval, config.topology, hostname, parts, config.collectors, registry.VIEWS
    )
    collectors = registry.build_collectors(context)
    specs = [spec for collector in collectors for spec in collector.specs()]
    sampler = Sampler(collectors, config.interval, inline=parts.inline, on_stop=parts.stop)
    compat = DcgmCompat(hostname) if config.exposition.dcgm_compat else None
    return Agent(config, collectors, sampler, Renderer(specs, compat))
