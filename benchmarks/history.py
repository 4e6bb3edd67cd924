"""The run history, `benchmarks/results.json`: every recorded run, and a run's figures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.machine import ROOT

HISTORY = ROOT / "benchmarks" / "results.json"
Run = dict[str, Any]


def load_history(path: Path = HISTORY) -> list[Run]:
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data.get("runs", []))


def save_history(runs: Sequence[Run], path: Path = HISTORY) -> None:
    path.write_text(json.dumps({"runs": list(runs)}, indent=1) + "\n", encoding="utf-8")


def previous_run(runs: Sequence[Run], current: Run) -> Run | None:
    """The latest recorded run of the same kind (quick or full) before `current`."""
    for run in reversed(runs):
        if run is not current and run.get("quick") == current.get("quick"):
            return run
    return None


def value(run: Run | None, scenario: str, key: str) -> float | None:
    if run is None:
        return None
    found = run.get("scenarios", {}).get(scenario, {}).get("metrics", {}).get(key)
    return None if found is None else float(found)
