"""Snapshot -> exposition bytes, rendered once per snapshot and format, plus self-metrics.

A scrape never collects: it looks up the bytes already rendered for the latest snapshot in the
negotiated format (and gzip), rendering them on the first scrape that asks.
"""

from __future__ import annotations

import gzip
import platform
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from agent import __version__
from agent.exposition_format import TEXT, Family, encode, negotiate
from agent.hw.nvml import binding_version
from agent.metrics import MetricSpec, Sample
from agent.sampler import Snapshot

BUILD_INFO = MetricSpec(
    "suanli_agent_build_info",
    "gauge",
    "The agent's version, Python version and NVML binding version (value 1).",
    ("version", "python_version", "nvml_binding_version"),
)
COLLECTOR_SUCCESS = MetricSpec(
    "suanli_collector_success",
    "gauge",
    "1 when the collector's last run succeeded within its deadline, else 0; a part of a "
    'collector that failed while the rest succeeded (collector="gpu/2": GPU 2) reads 0.',
    ("collector",),
)
COLLECTOR_DURATION = MetricSpec(
    "suanli_collector_duration_seconds",
    "gauge",
    "How long the collector's last run took (or has been running, when it is stuck).",
    ("collector",),
)
COLLECTOR_LAST_SUCCESS = MetricSpec(
    "suanli_collector_last_success_timestamp_seconds",
    "gauge",
    "Unix time of the collector's last successful run.",
    ("collector",),
)
SELF_SPECS = (BUILD_INFO, COLLECTOR_SUCCESS, COLLECTOR_DURATION, COLLECTOR_LAST_SUCCESS)

ExtraSource = Callable[[], Sequence[Sample]]


class Derived(Protocol):
    """More series computed from a snapshot's samples (dcgm-exporter's names): once a snapshot."""

    @property
    def specs(self) -> Sequence[MetricSpec]: ...

    def samples(self, native: Iterable[Sample]) -> list[Sample]: ...


def self_samples(snapshot: Snapshot) -> list[Sample]:
    """The agent's own series for one snapshot."""
    versions = (__version__, platform.python_version(), binding_version())
    samples = [Sample(BUILD_INFO, versions, 1.0)]
    for result in snapshot.results:
        name = (result.name,)
        samples.append(Sample(COLLECTOR_SUCCESS, name, 1.0 if result.success else 0.0))
        if result.view:  # timed with its GPU collector: its success is what is news
            continue
        samples.append(Sample(COLLECTOR_DURATION, name, result.duration))
        if result.last_success is not None:
            samples.append(Sample(COLLECTOR_LAST_SUCCESS, name, result.last_success))
        samples += [
            Sample(COLLECTOR_SUCCESS, (f"{result.name}/{part}",), 0.0)
            for part in result.failed_parts
        ]
    return samples


def families(specs: Sequence[MetricSpec], samples: Iterable[Sample]) -> list[Family]:
    """Group samples into families in declaration order; families with no sample are left out."""
    built: dict[str, Family] = {}
    for spec in specs:
        built.setdefault(spec.name, Family(spec, []))
    for sample in samples:
        family = built.get(sample.spec.name)
        if family is None:
            family = built[sample.spec.name] = Family(sample.spec, [])
        family.samples.append((sample.labels, sample.value))
    return [family for family in built.values() if family.samples]


def render_text(specs: Sequence[MetricSpec], samples: Iterable[Sample]) -> bytes:
    """Prometheus text format of `samples`, families in declaration order."""
    return encode(TEXT, families(specs, samples))


class Renderer:
    """Caches the rendered bytes of the latest snapshot per content type and encoding."""

    def __init__(self, specs: Sequence[MetricSpec], derived: Derived | None = None) -> None:
        self.specs = [*specs, *SELF_SPECS, *(derived.specs if derived is not None else ())]
        self._derived = derived
        self._derived_samples: list[Sample] | None = None  # of the cached snapshot
        self._lock = threading.Lock()
        self._sequence = -1
        self._cache: dict[tuple[str, bool], bytes] = {}
        self._extra_sources: list[ExtraSource] = []
        self._extra: tuple[Sample, ...] = ()

    def attach(self, specs: Sequence[MetricSpec], source: ExtraSource) -> None:
        """Also export the series `source` returns (asked on every render; a change re-renders)."""
        self.specs = [*self.specs, *specs]
        self._extra_sources.append(source)

    def render(
        self, snapshot: Snapshot, accept: str = "", gzipped: bool = False
    ) -> tuple[bytes, str]:
        """(body, content type) for `snapshot` in the format `accept` negotiates."""
        content_type = negotiate(accept)
        key = (content_type, gzipped)
        extra = tuple(sample for source in self._extra_sources for sample in source())
        with self._lock:
            if snapshot.sequence != self._sequence or extra != self._extra:
                self._cache.clear()
                if snapshot.sequence != self._sequence:
                    self._derived_samples = None
                self._sequence, self._extra = snapshot.sequence, extra
            body = self._cache.get(key)
            if body is None:
                body = self._encode(snapshot, content_type, gzipped)
                self._cache[key] = body
        return body, content_type

    def _encode(self, snapshot: Snapshot, content_type: str, gzipped: bool) -> bytes:
        plain = self._cache.get((content_type, False))
        if plain is None:
            samples = [*all_samples(snapshot), *self._extra]
            if self._derived is not None:
                if self._derived_samples is None:
                    self._derived_samples = self._derived.samples(samples)
                samples += self._derived_samples
            plain = encode(content_type, families(self.specs, samples))
            self._cache[(content_type, False)] = plain
        return gzip.compress(plain, compresslevel=6) if gzipped else plain


def all_samples(snapshot: Snapshot) -> Iterator[Sample]:
    for result in snapshot.results:
        yield from result.samples
    yield from self_samples(snapshot)
