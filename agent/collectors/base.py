"""What every collector is: a name, the metrics it declares, and one `collect()` per cycle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agent.metrics import MetricSpec, Sample


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
