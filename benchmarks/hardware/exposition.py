"""Reading the agent's Prometheus text back into (name, labels, value) series."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Series:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Series]:
    """Every sample line of an exposition (comments and malformed lines skipped)."""
    found = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if line.startswith("#") or match is None:
            continue
        labels = {key: _unescape(value) for key, value in _LABEL.findall(match.group(2) or "")}
        try:
            found.append(Series(match.group(1), labels, float(match.group(3))))
        except ValueError:
            continue
    return found


def _unescape(value: str) -> str:
    return value.replace(r"\"", '"').replace(r"\n", "\n").replace("\\\\", "\\")


def find(series: list[Series], name: str, **labels: str) -> Series | None:
    """The first series named `name` whose labels include `labels`."""
    for s in series:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s
    return None
