"""The job ledger on disk: one JSON line per ended job, and the checkpoint of running totals.

Durability, in order: a ledger line is written, flushed and fsync'd before the job counts as
written; the checkpoint (every job's running totals, whether its line is written, and each GPU's
last energy reading) is replaced atomically (write a temporary file, fsync, rename, fsync the
directory). After a crash, a job the checkpoint shows as ended but unwritten is looked up in the
ledger's tail first (`written_keys`), so its line is never written twice; a running job resumes
from its checkpointed totals, and the energy its GPUs drew since is counted from their hardware
counters at the first cycle after the restart, so nothing is lost or counted twice.

Rotation: when a line would take the file past `max_bytes`, FILE becomes FILE.1 (FILE.1 becomes
FILE.2, ... up to `keep` old files; the oldest is deleted). Pure file work; errors raise OSError.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TAIL_BYTES = 1 << 20  # how much of the ledger's end is searched for lines already written
LineKey = tuple[str, str, float]


def line_key(line: Mapping[str, Any]) -> LineKey:
    """What identifies a job's line: scheduler, job id and start."""
    return (str(line["scheduler"]), str(line["job_id"]), round(float(line["start"]), 3))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rotate(path: Path, keep: int) -> None:
    for n in range(keep, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        newer = path if n == 1 else path.with_name(f"{path.name}.{n - 1}")
        if newer.exists():
            os.replace(newer, older)
    if keep == 0:
        path.unlink(missing_ok=True)
    _fsync_dir(path)


def append_lines(path: Path, lines: list[Mapping[str, Any]], max_bytes: int, keep: int) -> None:
    """Append each line (one JSON object a line), rotating first when it would not fit."""
    for line in lines:
        data = (json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n").encode()
        size = path.stat().st_size if path.exists() else 0
        if size and size + len(data) > max_bytes:
            _rotate(path, keep)
        with open(path, "ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def written_keys(path: Path) -> set[LineKey]:
    """Keys of the lines in the last TAIL_BYTES of the ledger (and of FILE.1 if just rotated)."""
    found: set[LineKey] = set()
    for candidate in (path, path.with_name(f"{path.name}.1")):
        try:
            with open(candidate, "rb") as handle:
                handle.seek(max(0, candidate.stat().st_size - TAIL_BYTES))
                tail = handle.read()
        except OSError:
            continue
        for raw in tail.splitlines():
            try:
                found.add(line_key(json.loads(raw)))
            except (ValueError, KeyError, TypeError):
                continue  # the cut first line, or a line damaged by hand
    return found


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(state, handle, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The saved state; None when there is none. Raises ValueError when it is unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    state = json.loads(text)
    if not isinstance(state, dict) or state.get("version") != 1:
        raise ValueError(f"{path}: not a checkpoint of this agent")
    return state
