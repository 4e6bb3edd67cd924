"""Write every dashboard to grafana/dashboards/<uid>.json, deterministically (sorted keys)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from grafana.generator import center, efficiency, health, jobs, node, power
from grafana.generator.panels import Json

DASHBOARDS_DIR = Path(__file__).resolve().parents[1] / "dashboards"
BUILDERS: tuple[Callable[[], Json], ...] = (
    center.build,
    efficiency.build,
    power.build,
    health.build,
    jobs.build,
    node.build,
)


def render(board: Json) -> str:
    """The file text of a dashboard: 2-space JSON with sorted keys and a final newline."""
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def files() -> dict[str, str]:
    """File name -> text of every dashboard."""
    out: dict[str, str] = {}
    for build in BUILDERS:
        board = build()
        out[f"{board['uid']}.json"] = render(board)
    return out


def write(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Write the dashboards, remove stale generated ones; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = files()
    for stale in directory.glob("suanli-*.json"):
        if stale.name not in wanted:
            stale.unlink()
    written = []
    for name, text in wanted.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def differences(directory: Path = DASHBOARDS_DIR) -> list[str]:
    """Names of dashboard files that are missing, stale or differ from the generator's output."""
    wanted = files()
    present = {p.name for p in directory.glob("suanli-*.json")}
    changed = [
        name
        for name, text in wanted.items()
        if not (directory / name).exists() or (directory / name).read_text(encoding="utf-8") != text
    ]
    return sorted(set(changed) | (present - set(wanted)))
