"""`suanli-agent ledger FILE...`: the job ledger summed per job, user or namespace.

Each line of a ledger is one ended job (`agent.ledger_file`). A job counts in a window when its
end falls in it (`--since` inclusive, `--until` exclusive): the ledger holds totals per job, not
their course over time, so a job that spans midnight counts wholly on the day it ended. Lines that
are not a ledger line (broken JSON, a missing or mistyped field) are skipped and counted in one
line on stderr. Exit 2 with one line when a file cannot be read or an option is wrong.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2
HOUR = 3600.0
KWH = 3.6e6
PFLOP = 1e15
SECONDS = ("gpu_seconds", "busy_gpu_seconds", "idle_allocated_gpu_seconds")
NUMBERS = (*SECONDS, "energy_joules", "start", "end")


class UsageError(Exception):
    pass


def moment(text: str) -> float:
    """Seconds since the epoch from epoch seconds, a date or an ISO 8601 time (UTC unless
    it names its zone)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'"{text}" is not a time: use 2026-12-01, 2026-12-01T06:00:00Z or epoch seconds'
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="suanli-agent ledger",
        description="Sum the job ledger (collectors.jobs.ledger) per job, user or namespace.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="ledger files (rotated ones too)")
    p.add_argument("--since", type=moment, help="jobs that ended at or after this time")
    p.add_argument("--until", type=moment, help="jobs that ended before this time")
    p.add_argument("--by", choices=("job", "user", "namespace"), default="job")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    return p


@dataclass
class Row:
    key: str
    jobs: int = 0
    sums: dict[str, float] = field(default_factory=dict)

    def add(self, line: Mapping[str, Any]) -> None:
        self.jobs += 1
        for name in (*SECONDS, "energy_joules"):
            self.sums[name] = self.sums.get(name, 0.0) + float(line[name])
        for precision, flops in dict(line.get("delivered_flops") or {}).items():
            name = f"pflop_{precision}"
            self.sums[name] = self.sums.get(name, 0.0) + float(flops) / PFLOP

    def columns(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "jobs": self.jobs}
        for name in SECONDS:
            out[name.replace("seconds", "hours")] = round(self.sums[name] / HOUR, 6)
        out["energy_kwh"] = round(self.sums["energy_joules"] / KWH, 6)
        out.update({k: round(v, 6) for k, v in sorted(self.sums.items()) if k.startswith("pflop_")})
        return out


def valid(line: Any) -> bool:
    if not isinstance(line, dict) or not isinstance(line.get("job_id"), str):
        return False
    numbers = all(
        isinstance(line.get(n), (int, float)) and not isinstance(line.get(n), bool) for n in NUMBERS
    )
    flops = line.get("delivered_flops", {})
    return (
        numbers
        and isinstance(flops, dict)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flops.values())
    )


def group_key(line: Mapping[str, Any], by: str) -> str:
    if by == "job":
        return f"{line.get('scheduler', '')}/{line['job_id']}"
    value = line.get(by)
    return value if isinstance(value, str) and value else "unknown"


def read_lines(files: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The ledger lines of the files, and where each malformed line was (FILE:LINE)."""
    lines, bad = [], []
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for number, raw in enumerate(handle, 1):
                    if not raw.strip():
                        continue
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        line = None
                    if valid(line):
                        lines.append(line)
                    else:
                        bad.append(f"{path}:{number}")
        except OSError as err:
            raise UsageError(f"{path}: {err.strerror or err}") from None
    return lines, bad


def summarise(lines: Iterable[Mapping[str, Any]], args: argparse.Namespace) -> list[Row]:
    rows: dict[str, Row] = {}
    for line in lines:
        if args.since is not None and line["end"] < args.since:
            continue
        if args.until is not None and line["end"] >= args.until:
            continue
        key = group_key(line, args.by)
        rows.setdefault(key, Row(key)).add(line)
    return sorted(rows.values(), key=lambda r: (-r.sums["gpu_seconds"], r.key))


def render(rows: list[Row], form: str) -> str:
    records = [row.columns() for row in rows]
    names = sorted({k for r in records for k in r}, key=_column_order)
    if form == "json":
        return json.dumps(records, indent=2) + "\n"
    if form == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, names, restval=0, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()
    cells = [names] + [[_cell(r.get(n, 0)) for n in names] for r in records]
    widths = [max(len(row[i]) for row in cells) for i in range(len(names))]
    return "".join(_table_line(row, widths) for row in cells)


def _table_line(row: list[str], widths: list[int]) -> str:
    padded = [
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(row, widths, strict=True))
    ]
    return "  ".join(padded).rstrip() + "\n"


def _column_order(name: str) -> tuple[int, str]:
    fixed = ["key", "jobs", "gpu_hours", "busy_gpu_hours", "idle_allocated_gpu_hours"]
    return (fixed.index(name), "") if name in fixed else (len(fixed), name)


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        lines, bad = read_lines(args.files)
    except UsageError as err:
        print(f"suanli-agent ledger: {err}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(render(summarise(lines, args), args.format))
    if bad:
        print(
            f"suanli-agent ledger: {len(bad)} malformed line(s) skipped (first: {bad[0]})",
            file=sys.stderr,
        )
    return EXIT_OK
