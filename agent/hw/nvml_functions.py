"""Every NVML function the agent calls, in one place: `nvml_functions.csv`.

Each row names a pynvml function, the C symbols pynvml calls for it, and whether it was seen
answering on real hardware (`docs/hardware-validation.md`). A function that was not is first
called in a short-lived child process (`nvml_probe.py`) before the sampler uses it.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

__all__ = ["NvmlFunction", "functions", "unvalidated"]


@dataclass(frozen=True)
class NvmlFunction:
    name: str
    c_symbols: tuple[str, ...]
    validated: bool
    evidence: str


@functools.cache
def functions() -> dict[str, NvmlFunction]:
    text = resources.files("agent.hw").joinpath("nvml_functions.csv").read_text("utf-8")
    rows = csv.DictReader(text.splitlines())
    return {
        row["function"]: NvmlFunction(
            row["function"],
            tuple(row["c_symbols"].split()),
            row["validated_on_hardware"] == "yes",
            row["evidence"],
        )
        for row in rows
    }


def unvalidated() -> frozenset[str]:
    """The functions never seen answering on real hardware."""
    return frozenset(name for name, f in functions().items() if not f.validated)
