"""How a GPU metric family is declared: its `MetricSpec`, and how its values are read off a
`GpuReading` (the families themselves are in `gpu_metrics.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent.hw import GpuReading
from agent.metrics import MetricSpec

GPU_LABELS = ("gpu", "uuid")

Values = Iterable[tuple[tuple[str, ...], float | None]]


@dataclass(frozen=True)
class GpuFamily:
    """A GPU metric and the function that yields its (extra label values, value) pairs."""

    spec: MetricSpec
    values: Callable[[GpuReading], Values]
    detail_values: Callable[[GpuReading], Values] | None = None  # extra series under `detail`


def one(get: Callable[[GpuReading], float | None]) -> Callable[[GpuReading], Values]:
    return lambda r: [((), get(r))]


def value(key: str) -> Callable[[GpuReading], Values]:
    """A value `agent.hw.nvml_simple.SIMPLE_READS` reads, by its key (absent when NVML has none)."""
    return lambda r: [((), r.values.get(key))]


def keyed(get: Callable[[GpuReading], dict[str, float]]) -> Callable[[GpuReading], Values]:
    return lambda r: [((key,), value) for key, value in get(r).items()]


def split(
    get: Callable[[GpuReading], dict[str, float]], default: frozenset[str], detail: bool = False
) -> Callable[[GpuReading], Values]:
    """The pairs whose key is in `default` (or, with `detail`, those that are not)."""
    return lambda r: [((k,), v) for k, v in get(r).items() if (k in default) != detail]


def flags(get: Callable[[GpuReading], dict[str, bool]]) -> Callable[[GpuReading], Values]:
    return lambda r: [((key,), float(on)) for key, on in get(r).items()]


def gauge(name: str, help: str, extra: tuple[str, ...] = (), detail: bool = False) -> MetricSpec:
    return MetricSpec(f"suanli_gpu_{name}", "gauge", help, (*GPU_LABELS, *extra), detail)


def counter(name: str, help: str, extra: tuple[str, ...] = ()) -> MetricSpec:
    return MetricSpec(f"suanli_gpu_{name}", "counter", help, (*GPU_LABELS, *extra))
