"""Markdown tables and the number formats of docs/scale.md."""

from __future__ import annotations

from collections.abc import Iterable

GIB, MIB = 2**30, 2**20


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    return [row(*head), row(*["---"] * len(head)), *(row(*r) for r in rows)]


def n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def mib(value: float) -> str:
    return f"{value / MIB:.2f} MiB"


def both(end: float, peak: float) -> str:
    return f"{end / MIB:,.0f} / {peak / MIB:,.0f} MiB"


def ms(p50_s: float, p99_s: float) -> str:
    return f"{p50_s * 1000:.1f} / {p99_s * 1000:.1f} ms"
