"""The fleet as Prometheus file_sd JSON: one target group per rack, as inventory-to-filesd.py
writes it for a real center (targets `HOST:PORT`, labels cluster, hall and rack), written
atomically (a temporary file renamed over it) since Prometheus watches the file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from suanli_sim.fleet.topology import Placement


def target_groups(placements: Sequence[Placement], host: str) -> list[dict[str, Any]]:
    """Groups sorted by (cluster, hall, rack), each with its targets sorted."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    shown = f"[{host}]" if ":" in host else host
    for p in placements:
        groups.setdefault((p.cluster, p.hall, p.rack), []).append(f"{shown}:{p.port}")
    return [
        {"targets": sorted(targets), "labels": {"cluster": c, "hall": h, "rack": r}}
        for (c, h, r), targets in sorted(groups.items())
    ]


def write_file_sd(path: Path, placements: Sequence[Placement], host: str) -> int:
    """Write the targets of `placements` to `path`; returns the number of racks (groups)."""
    groups = target_groups(placements, host)
    text = json.dumps(groups, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(groups)
