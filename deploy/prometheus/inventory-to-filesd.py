#!/usr/bin/env python3
"""Turn a node inventory into Prometheus file_sd JSON for the Suanli agents.

The inventory is CSV with a header (host,port,cluster,hall,rack; port may be empty for 9445) or
YAML (a list of mappings with the same keys). The output groups targets by (cluster, hall, rack),
so each group carries its topology as target labels, which Prometheus adds to every series:

    [{"targets": ["gpu-0001:9445", ...],
      "labels": {"cluster": "zjk1", "hall": "h01", "rack": "r001"}}]

The file is written atomically (a temporary file renamed over it): Prometheus watches file_sd files
and must never read a half-written one. Exit status 0, or 2 with every problem of the inventory.

    python3 deploy/prometheus/inventory-to-filesd.py inventory.csv \
        -o /etc/prometheus/suanli-targets/nodes.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_PORT = 9445
FIELDS = ("host", "port", "cluster", "hall", "rack")
TOPOLOGY = ("cluster", "hall", "rack")
# a host name or IPv4 address; IPv6 literals go in brackets, as in a Prometheus target
HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$")
# label values may hold any UTF-8, but topology names with spaces or quotes make PromQL painful
VALUE_RE = re.compile(r"^[A-Za-z0-9._-]+$")


class InventoryError(ValueError):
    """The inventory has problems; `problems` lists every one, with its line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_inventory(path: Path) -> list[dict[str, Any]]:
    """Rows of the inventory as dicts, each with a `_where` ("file:line") for messages."""
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml  # only YAML inventories need PyYAML

        data = yaml.safe_load(text) or []
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InventoryError([f"{path}: expected a list of mappings with keys {FIELDS}"])
        return [{**r, "_where": f"{path}: entry {i + 1}"} for i, r in enumerate(data)]
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(lines, skipinitialspace=True)
    missing = [f for f in FIELDS if f not in (reader.fieldnames or []) and f != "port"]
    if missing:
        raise InventoryError(
            [f"{path}: header lacks {', '.join(missing)} (need {','.join(FIELDS)})"]
        )
    return [{**r, "_where": f"{path}: row {i + 1}"} for i, r in enumerate(reader)]


def to_file_sd(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """file_sd target groups, one per (cluster, hall, rack), sorted; raises InventoryError."""
    problems: list[str] = []
    groups: dict[tuple[str, ...], list[str]] = {}
    seen: dict[str, str] = {}
    for row in rows:
        where = row["_where"]
        host = str(row.get("host") or "").strip()
        port_text = str(row.get("port") or "").strip()
        topo = tuple(str(row.get(k) or "").strip() for k in TOPOLOGY)
        if not HOST_RE.match(host):
            problems.append(f"{where}: bad host {host!r}")
            continue
        if not port_text:
            port = DEFAULT_PORT
        elif port_text.isdigit() and 0 < int(port_text) < 65536:
            port = int(port_text)
        else:
            problems.append(f"{where}: bad port {port_text!r}")
            continue
        bad = [f"{k}={v!r}" for k, v in zip(TOPOLOGY, topo, strict=True) if not VALUE_RE.match(v)]
        if bad:
            problems.append(f"{where}: {', '.join(bad)}: need letters, digits, '.', '_' or '-'")
            continue
        target = f"{host}:{port}"
        if target in seen:
            problems.append(f"{where}: {target} already listed at {seen[target]}")
            continue
        seen[target] = where
        groups.setdefault(topo, []).append(target)
    if problems:
        raise InventoryError(problems)
    return [
        {"targets": sorted(targets), "labels": dict(zip(TOPOLOGY, topo, strict=True))}
        for topo, targets in sorted(groups.items())
    ]


def write_atomically(path: Path, text: str) -> None:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "inventory", type=Path, help="CSV or YAML inventory (host,port,cluster,hall,rack)"
    )
    parser.add_argument("-o", "--output", type=Path, help="file_sd JSON to write (default: stdout)")
    args = parser.parse_args(argv)
    try:
        groups = to_file_sd(read_inventory(args.inventory))
    except InventoryError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    except OSError as err:
        print(f"{args.inventory}: {err.strerror}", file=sys.stderr)
        return 2
    text = json.dumps(groups, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_atomically(args.output, text)
        n = sum(len(g["targets"]) for g in groups)
        print(f"{args.output}: {n} targets in {len(groups)} racks", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
