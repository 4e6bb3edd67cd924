"""nvidia-smi's XML report: reading values out of it in the agent's base units.

A value nvidia-smi prints as N/A (or similar) reads as None; a tag the report lacks
altogether reads as MISSING, so that a newer or older nvidia-smi is told apart from a GPU
that has no such value.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Final

MISSING: Final = "missing"
Value = float | None | str  # a number, None (N/A), or MISSING
MIB = 1024.0 * 1024.0
MHZ = 1e6
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ABSENT = ("n/a", "[n/a]", "not supported", "[not supported]", "unknown", "")

Reader = Callable[[ET.Element], Value]
Convert = Callable[[str], float | None]


def parse(text: str) -> ET.Element | None:
    try:
        return ET.fromstring(text)
    except ET.ParseError:
        return None


def gpus(root: ET.Element | None) -> dict[str, ET.Element]:
    """The report's GPUs by UUID."""
    if root is None:
        return {}
    return {(g.findtext("uuid") or "").strip(): g for g in root.findall("gpu")}


def number(scale: float = 1.0) -> Callable[[str], float | None]:
    """'80.00 W' -> 80.0 * scale; '16x' -> 16; N/A -> None."""

    def read(text: str) -> float | None:
        match = _NUMBER.search(text)
        return None if match is None else float(match.group()) * scale

    return read


def pstate(text: str) -> float | None:
    match = re.fullmatch(r"P(\d+)", text)
    return None if match is None else float(match.group(1))


def yes_no(text: str) -> float | None:
    return {"yes": 1.0, "no": 0.0}.get(text.lower())


def active(text: str) -> float | None:
    return {"active": 1.0, "not active": 0.0}.get(text.lower())


def recovery(text: str) -> float | None:
    """nvidia-smi's recovery action; only None is certain (0), the rest are kept unknown."""
    return 0.0 if text.lower() == "none" else None


def tag(path: str, convert: Callable[[str], float | None]) -> Reader:
    """A reader of one tag's text under a <gpu> element."""

    def read(gpu: ET.Element) -> Value:
        text = gpu.findtext(path)
        if text is None:
            return MISSING
        text = text.strip()
        return None if text.lower() in _ABSENT else convert(text)

    return read


def ecc_total(uncorrected: bool) -> Reader:
    """Aggregate ECC errors summed over SRAM and DRAM (uncorrectable: parity and SEC-DED too)."""

    def read(gpu: ET.Element) -> Value:
        block = gpu.find("ecc_errors/aggregate")
        if block is None:
            return MISSING
        total, seen = 0.0, False
        for child in block:
            wanted = (
                "uncorrectable" in child.tag
                if uncorrected
                else child.tag.endswith("_correctable") and "uncorrectable" not in child.tag
            )
            value = number()(child.text or "") if wanted else None
            if value is not None:
                total, seen = total + value, True
        return total if seen else None

    return read
