"""Helpers shared by the validation steps: NVML loading, JSON parts, bounded commands, stats."""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAKE_ENV = "VALIDATE_FAKE"  # a simulator scenario: local dry runs of the NVML steps, never on a GPU
TAIL = 2000  # characters of a command's output kept in the JSON


@dataclass(frozen=True)
class Context:
    out: Path  # what comes back from the machine (8 files at most)
    scratch: Path  # parts and logs, merged by the summary step


def nvml_module() -> Any:
    """The real pynvml (not initialised), or the simulator under VALIDATE_FAKE. Raises on import."""
    fake = os.environ.get(FAKE_ENV)
    if not fake:
        return importlib.import_module("pynvml")
    from suanli_sim.fake_nvml import FakeNvml
    from suanli_sim.fake_scenario import load_scenario

    return FakeNvml(load_scenario(fake))


def open_nvml() -> tuple[Any, str | None]:
    """(initialised module, None), or (None, why NVML cannot be used here)."""
    try:
        nv = nvml_module()
    except Exception as err:
        return None, f"pynvml not importable: {err!r}"
    try:
        nv.nvmlInit()
    except Exception as err:
        return None, f"NVML unavailable: {err!r}"
    return nv, None


def guarded(name: str, probe: Callable[[], Any]) -> Any:
    """The probe's answer, or {"error": ...}: one failing probe never stops the others."""
    started = time.monotonic()
    try:
        return probe()
    except BaseException as err:  # a probe may fail in any way: recorded
        if isinstance(err, KeyboardInterrupt):
            raise
        return {
            "error": f"{name}: {err!r}",
            "traceback": traceback.format_exc()[-TAIL:],
            "seconds": round(time.monotonic() - started, 3),
        }


def run_command(
    args: list[str], timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run a command with a timeout; its exit status, output and duration (never raises)."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired as err:
        return {"rc": None, "error": f"timed out after {timeout} s", "stdout": _text(err.stdout)}
    except OSError as err:
        return {"rc": None, "error": repr(err), "stdout": ""}
    return {
        "rc": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr[-TAIL:],
        "seconds": round(time.monotonic() - started, 3),
    }


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


def stats(values: list[float], digits: int = 1) -> dict[str, Any]:
    """n, median, p90, min and max of `values` (None for an empty list)."""
    if not values:
        return {"n": 0, "median": None, "p90": None, "min": None, "max": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), digits),
        "p90": round(p90, digits),
        "min": round(ordered[0], digits),
        "max": round(ordered[-1], digits),
    }


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=repr) + "\n")


def read_json(path: Path) -> Any:
    """The file's JSON, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def part(ctx: Context, name: str) -> Path:
    """Where a step leaves a result for the summary step to merge."""
    return ctx.scratch / f"part-{name}.json"
