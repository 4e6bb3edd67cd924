"""Markdown tables and the number formats of `docs/benchmarks.md` and the run's summary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def number(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def calls(value: float) -> str:
    """Call counts: whole numbers as such, fractions with two decimals."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def delta(current: float | None, previous: float | None, digits: int) -> str:
    if current is None or previous is None:
        return "-"
    change = current - previous
    if previous == 0 or abs(change) < 10 ** -(digits + 1):
        return f"{change:+,.{max(digits, 1)}f}" if change else "0"
    return f"{100 * change / abs(previous):+.1f}%"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
