"""Options as data: each part of the agent declares its options once, as a frozen dataclass whose
fields carry their own check (`option(default, check)`); `agent.config` assembles the YAML schema
from those declarations, so a key, its default, its check and its flag live in one place.

A check takes the raw YAML (or flag) value and returns the typed value, or raises ValueError
with a hint; the configuration loader adds the key's path.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any], Any]
CHECK = "check"  # the field metadata key
PATH_KIND = "path_kind"  # what --check-config expects at a path option: DIRECTORY or READABLE
DIRECTORY, READABLE = "a directory", "a readable file or device"

_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def option(default: Any, check: Check) -> Any:
    """A dataclass field with its default and the check its configured values go through."""
    return dataclasses.field(default=default, metadata={CHECK: check})


def path_option(default: str, kind: str) -> Any:
    """A file system path ("" where the default allows: none); `--check-config` checks that it
    exists as `kind` (DIRECTORY or READABLE) when its collector is enabled (agent.config_paths)."""
    return dataclasses.field(default=default, metadata={CHECK: string, PATH_KIND: kind})


def check_of(field: dataclasses.Field[Any]) -> Check | None:
    check: Check | None = field.metadata.get(CHECK)
    return check


def parse_duration(text: object) -> float:
    """`"5s"`, `"500ms"`, `"1m30s"` -> seconds. Raises ValueError with a hint."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f'must be a duration like "5s" or "500ms", got {text!r}')
    cleaned = text.strip()
    if not _DURATION_RE.match(cleaned):
        raise ValueError(f'must be a positive duration like "5s" or "500ms", got "{text}"')
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART_RE.findall(cleaned))
    if seconds <= 0 or not math.isfinite(seconds):
        raise ValueError(f'must be a positive duration like "5s", got "{text}"')
    return seconds


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def string(value: Any) -> str:
    """A string that can be written out: valid Unicode, no NUL."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    if "\0" in value:
        raise ValueError(f"must not hold NUL, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"must be valid Unicode, got {value!r}") from None
    return value


MAX_LABEL_CHARS = 256


def label_value(value: Any) -> str:
    """A label value: a printable one-line string of at most MAX_LABEL_CHARS characters."""
    text = string(value)
    if not text.isprintable() or len(text) > MAX_LABEL_CHARS:
        why = f"a printable one-line string of at most {MAX_LABEL_CHARS} characters"
        raise ValueError(f"must be {why}, got {value!r}")
    return text


def whole(low: int, high: int, what: str = "a whole number") -> Check:
    """An integer from `low` to `high`; `what` names it in the hint."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be {what} from {low} to {high}, got {value!r}")
        return value

    return check


def one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check


def int_list(low: int, high: int, example: str) -> Check:
    """A list of integers from `low` to `high` (e.g. XID codes), as a tuple."""

    def check(value: Any) -> tuple[int, ...]:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in value
        ):
            raise ValueError(f"must be a list like {example}, got {value!r}")
        return tuple(value)

    return check


@dataclass(frozen=True)
class Topology:
    """Where the node stands in the center: labels of its node info series."""

    cluster: str = option("", label_value)
    hall: str = option("", label_value)
    rack: str = option("", label_value)
