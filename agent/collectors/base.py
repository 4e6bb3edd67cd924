"""What every collector is, and how the registry builds it.

A collector has a name, the metrics it declares, and one `collect()` per cycle. A GPU view is a
collector of its own (its own `suanli_collector_success` series, failing alone) that is fed the
GPU collector's reading of the cycle instead of reading the hardware itself: health, MIG, jobs,
the kernel log. Each module declares a `Kind` (or `ViewKind`): its name, the options section it
reads and how to build it; `agent.collectors.registry` lists them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from agent.hw import GpuSnapshot
from agent.metrics import MetricSpec, Sample
from agent.options import Topology

if TYPE_CHECKING:
    from agent.hw.nvml_backend import NvmlBackend
    from agent.parts import Parts


class Collector(Protocol):
    """A source of samples. `collect` may raise; the sampler isolates and reports it."""

    name: str

    def specs(self) -> Sequence[MetricSpec]:
        """Every metric this collector can produce with its current options."""
        ...

    def collect(self) -> list[Sample]:
        """Read the source once and return this cycle's samples."""
        ...

    def close(self) -> None:
        """Release what the collector holds (NVML, files). Called once at shutdown."""
        ...


class GpuView(Protocol):
    """A collector over the GPU collector's reading of the cycle. `samples` may raise: the GPU
    collector reports that view failed and keeps every other view's samples."""

    name: str

    def specs(self) -> Sequence[MetricSpec]: ...

    def samples(self, snapshot: GpuSnapshot) -> list[Sample]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ViewOutcome:
    """One GPU view's part of a cycle: its samples, or why it has none."""

    name: str
    samples: list[Sample]
    error: str | None
    duration: float

    @classmethod
    def of(cls, view: GpuView, snapshot: GpuSnapshot) -> ViewOutcome:
        started = time.monotonic()
        try:
            samples = view.samples(snapshot)
        except Exception as err:  # a view's bug must not take the GPU metrics with it
            error = f"{type(err).__name__}: {err}"
            return cls(view.name, [], error, time.monotonic() - started)
        return cls(view.name, samples, None, time.monotonic() - started)


@dataclass(frozen=True)
class Context:
    """What a collector is built from besides its own options."""

    interval: float
    topology: Topology
    hostname: str | None
    parts: Parts
    sections: Any  # every collector's options (`CollectorsConfig`), by section name
    views: tuple[ViewKind, ...] = ()  # the GPU views the registry offers

    def options(self, section: str) -> Any:
        return getattr(self.sections, section)


@dataclass(frozen=True)
class Kind:
    """A collector of the node: `collectors.<name>` is its options section (an `enabled` key
    among them) and `collector="<name>"` its self-metrics."""

    name: str
    options: type[Any]
    build: Callable[[Any, Context], Collector]
    title: str  # its section of the README's metrics reference
    specs: tuple[MetricSpec, ...]  # every metric it can export, detail ones included


@dataclass(frozen=True)
class ViewKind:
    """A GPU view; `section`: the options it reads (its own, or the GPU collector's). A view
    with its own section is built only when that section is enabled."""

    name: str
    section: str
    build: Callable[[Any, Context, NvmlBackend], GpuView]
    title: str
    specs: tuple[MetricSpec, ...]
