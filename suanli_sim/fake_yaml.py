"""Strict checks of scenario YAML values; each failure is a one-line ScenarioError with its path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.fake_functions import KNOWN_SYMBOLS
from suanli_sim.fake_models import RECOVERY_ACTIONS


class ScenarioError(ValueError):
    """A scenario file is invalid; the message is one line naming the YAML path."""


def mapping(value: Any, path: str, allowed: set[str] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{path}: expected a mapping, got {kind_of(value)}")
    for key in value:
        if allowed is not None and key not in allowed:
            prefix = "" if path == "(top level)" else f"{path}."
            raise ScenarioError(
                f"{prefix}{key}: unknown key; allowed: " + ", ".join(sorted(allowed))
            )
    return value


def typed(value: Any, path: str, kind: type[Any]) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ScenarioError(f"{path}: expected {kind.__name__}, got {kind_of(value)} {value!r}")
    return value


def optional(value: Any, path: str, kind: type[Any]) -> Any:
    return None if value is None else typed(value, path, kind)


def number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{path}: expected a number, got {kind_of(value)} {value!r}")
    return float(value)


def optional_number(value: Any, path: str) -> float | None:
    return None if value is None else number(value, path)


def positive_int(value: Any, path: str) -> int:
    number_: int = typed(value, path, int)
    if number_ < 1:
        raise ScenarioError(f"{path}: must be at least 1, got {number_}")
    return number_


def int_list(value: Any, path: str) -> list[int]:
    return [typed(v, f"{path}[{i}]", int) for i, v in enumerate(typed(value, path, list))]


def kind_of(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def functions(value: Any, path: str) -> tuple[str, ...]:
    names = typed(value, path, list)
    for i, name in enumerate(names):
        typed(name, f"{path}[{i}]", str)
        if name != "*" and name not in KNOWN_SYMBOLS:
            raise ScenarioError(
                f'{path}[{i}]: unknown function "{name}"; see suanli_sim.fake_functions.FUNCTIONS'
            )
    return tuple(names)


def error_name(value: Any, path: str) -> str:
    name: str = typed(value, path, str)
    if not isinstance(getattr(pynvml, f"NVMLError_{name}", None), type):
        raise ScenarioError(f'{path}: unknown NVML error "{name}" (e.g. Unknown, Timeout)')
    return name


def action(value: Any, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    name = typed(value, path, str)
    if name not in RECOVERY_ACTIONS:
        raise ScenarioError(
            f'{path}: unknown action "{name}"; known: ' + ", ".join(RECOVERY_ACTIONS)
        )
    return int(RECOVERY_ACTIONS[name])


FAULT_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "at": number,
    "until": optional_number,
    "functions": functions,
    "error": error_name,
    "seconds": number,
    "code": lambda v, p: typed(v, p, int),
    "count": positive_int,
    "corrected": lambda v, p: typed(v, p, int),
    "uncorrected": lambda v, p: typed(v, p, int),
    "generation": lambda v, p: optional(v, p, int),
    "width": lambda v, p: optional(v, p, int),
    "temperature": optional_number,
    "hw": lambda v, p: typed(v, p, bool),
    "links": lambda v, p: tuple(int_list(v, p)),
    "action": action,
    "switch": lambda v, p: typed(v, p, int),
    "link": lambda v, p: typed(v, p, int),
    "fatal": lambda v, p: typed(v, p, bool),
}
