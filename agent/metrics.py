"""Metric declarations as data, and the samples collectors produce.

Every metric is declared once, as a `MetricSpec`, in the module that produces it. A collector
returns `Sample`s that point at their spec; the exposition layer turns them into families.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

PREFIX = "suanli_"

MetricKind = Literal["gauge", "counter"]

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_BASE_UNIT_SUFFIXES = (
    "_bytes",
    "_bytes_per_second",
    "_seconds",
    "_watts",
    "_joules",
    "_hertz",
    "_celsius",
    "_ratio",
    "_flops",
    "_info",
    "_total",
)


@dataclass(frozen=True)
class MetricSpec:
    """One metric family: its full name, type, help text and label names.

    `detail` families are exported only when the collector's `detail` option is on.
    Counters are declared with their `_total` name, exactly as they appear in the exposition.
    """

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()
    detail: bool = False

    def __post_init__(self) -> None:
        problem = naming_problem(self)
        if problem:
            raise ValueError(f"metric {self.name}: {problem}")


class Sample(NamedTuple):
    """One series value: the spec it belongs to, its label values (in spec order), the value."""

    spec: MetricSpec
    labels: tuple[str, ...]
    value: float


def naming_problem(spec: MetricSpec) -> str | None:
    """Return why `spec` breaks the naming rules of the metric contract, or None."""
    if not spec.name.startswith(PREFIX):
        return f"must start with {PREFIX!r}"
    if not _NAME_RE.match(spec.name):
        return "must be lower snake case"
    if spec.kind == "counter" and not spec.name.endswith("_total"):
        return "a counter must end in _total"
    if spec.kind == "gauge" and spec.name.endswith("_total"):
        return "only counters end in _total"
    for label in spec.labels:
        if not _NAME_RE.match(label) or label.startswith("__"):
            return f"bad label name {label!r}"
    if len(set(spec.labels)) != len(spec.labels):
        return "duplicate label names"
    if not spec.help.strip():
        return "help text is empty"
    return None


def unit_suffix_ok(name: str) -> bool:
    """True when a name ends in a base unit, `_info`, `_total`, or is a plain count/state."""
    return name.endswith(_BASE_UNIT_SUFFIXES)


def specs_of(groups: Iterable[Iterable[MetricSpec]]) -> list[MetricSpec]:
    """Flatten declared spec groups, refusing a name declared twice."""
    seen: dict[str, MetricSpec] = {}
    for group in groups:
        for spec in group:
            if spec.name in seen and seen[spec.name] != spec:
                raise ValueError(f"metric {spec.name} declared twice with different shapes")
            seen[spec.name] = spec
    return list(seen.values())
