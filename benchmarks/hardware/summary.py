"""Step 5: everything merged into `probes.json` and told in `summary.md`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmarks.hardware.common import FAKE_ENV, Context, part, read_json, write_json

PROBES_NAME = "probes.json"
LOG_TAIL = 1500
FILES = {
    "summary.md": "this summary",
    "nvidia-smi-q.xml": "`nvidia-smi -q -x` at the start (idle)",
    "nvidia-smi-q.txt": "`nvidia-smi -q` at the start (idle)",
    "agent-once.prom": "`python -m agent --once` (detail on) against the real GPU",
    "compare.json": "agent vs nvidia-smi, row by row {metric, agent, nvidia-smi, ok}",
    PROBES_NAME: "machine and versions, step results, fabric/events/PCI/kmsg probes",
    "cycle.json": "backend read-cycle times and per-NVML-call latencies (µs)",
    "compute.json": "GEMM TFLOP/s vs GPM activity, per load and per second",
}


def steps(ctx: Context) -> list[dict[str, Any]]:
    """The shell's record of each step: name, exit status, limit and seconds."""
    try:
        lines = (ctx.scratch / "steps.tsv").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        name, rc, limit, seconds = ([*line.split("\t"), "", "", "", ""])[:4]
        found.append({"step": name, "rc": rc, "limit_s": limit, "seconds": seconds})
    return found


def run(ctx: Context) -> None:
    done = steps(ctx)
    probes = {
        "environment": read_json(part(ctx, "env")),
        "steps": done,
        **(read_json(part(ctx, "probes")) or {"probes": "no result (see summary.md)"}),
    }
    write_json(ctx.out / PROBES_NAME, probes)
    loaded = {name: read_json(ctx.out / name) for name in ("compare.json", "cycle.json")}
    loaded["compute.json"] = read_json(ctx.out / "compute.json")
    from benchmarks.hardware.report import render

    text = render(done, probes, loaded, _logs(ctx, done), os.environ.get(FAKE_ENV))
    (ctx.out / "summary.md").write_text(text + _files(ctx.out))


def _logs(ctx: Context, done: list[dict[str, Any]]) -> dict[str, str]:
    """The end of each failed step's log."""
    logs = {}
    for step in done:
        if step["rc"] != "0":
            try:
                logs[step["step"]] = (ctx.scratch / f"{step['step']}.log").read_text()[-LOG_TAIL:]
            except OSError:
                logs[step["step"]] = "(no log)"
    return logs


def _files(out: Path) -> str:
    lines = ["", "## Files", ""]
    for name, what in FILES.items():
        there = "" if (out / name).exists() or name == "summary.md" else " — **missing**"
        lines.append(f"- `{name}`: {what}{there}")
    return "\n".join(lines) + "\n"
