"""`python -m benchmarks.center --nodes 1000 --minutes 5`: measure a simulated center.

Starts `suanli-agent simulate` (N nodes on loopback ports, its file_sd file), then
1. a real Prometheus (the shipped prometheus.yml as one shard, the project's recording rules and
   alerts) scraping every node at the interval, for `--minutes`: series, samples/s, memory, CPU,
   rule group durations, scrape latency, which recording rules have data, and the latency of
   every Grafana panel query (via tests/dashboard_queries.py, when it exists);
2. vmagent scraping the same nodes and remote-writing to VictoriaMetrics, for `--minutes`:
   rows/s, memory, CPU, disk;
and writes the figures with an extrapolation to 10,000 nodes to docs/scale.md (`--doc`) and
benchmarks/center/results.json. Figures taken while other work runs on the machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.center.processes import ROOT, Fleet, start_simulator
from benchmarks.center.report import DOC, document
from benchmarks.center.runs import Window, prometheus_run, seconds, victoria_run
from benchmarks.machine import describe, git_commit, utc_now

RESULTS = ROOT / "benchmarks" / "center" / "results.json"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.center", description=__doc__)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=5.0, help="measuring window of each run")
    p.add_argument("--interval", default="15s", help="sampling, scrape and evaluation interval")
    p.add_argument("--base-port", type=int, default=30000)
    p.add_argument("--repeats", type=int, default=5, help="runs of each panel query")
    p.add_argument("--skip-victoria", action="store_true")
    p.add_argument("--workdir", type=Path, help="keep logs and data here (default: temporary)")
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument(
        "--note", default="", help="a sentence for the document (e.g. the machine was busy)"
    )
    p.add_argument("--from-results", type=Path, help="only rewrite --doc from a results file")
    return p


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} is not on PATH (Debian packages prometheus, victoria-metrics)")
    return found


def version(name: str) -> str:
    out = subprocess.run([binary(name), "--version"], capture_output=True, text=True, check=False)
    words = (out.stdout or out.stderr).split()
    return words[2] if len(words) > 2 else "?"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    fleet = Fleet(args.nodes, args.base_port, args.interval, workdir / "targets.json")
    window = Window(args.minutes)
    results: dict[str, Any] = {"nodes": args.nodes, "minutes": args.minutes}
    results |= {"interval_s": seconds(args.interval), "date": utc_now(), "commit": git_commit()}
    results |= {"machine": describe(), "note": args.note}
    results["versions"] = {"prometheus": version("prometheus")}
    say(f"starting the simulator: {args.nodes} nodes")
    began = time.monotonic()
    sim, summary = start_simulator(fleet, workdir)
    try:
        startup = time.monotonic() - began
        results["simulator"] = _summary(summary, startup)
        say(f"simulator ready in {startup:.1f} s; Prometheus run ({args.minutes:g} min)")
        ports = (args.base_port - 3, args.base_port - 2, args.base_port - 1)
        results["prometheus"] = prometheus_run(
            binary("prometheus"), fleet, sim, workdir, window, args.repeats, ports[0]
        )
        if not args.skip_victoria:
            say(f"vmagent -> VictoriaMetrics run ({args.minutes:g} min)")
            tools = (binary("victoria-metrics"), binary("vmagent"))
            results["victoria"] = victoria_run(tools, fleet, sim, workdir, window, ports[1:])
    finally:
        stopping = time.monotonic()
        results.setdefault("simulator", {})["exit_code"] = sim.stop()
        results["simulator"]["stop_s"] = time.monotonic() - stopping
    return results


def _summary(line: str, startup: float) -> dict[str, Any]:
    fleet = line.split(": ", 1)[1].split(" on ", 1)[0]
    processes = line.split("; ")[-2] if line.count("; ") >= 2 else "?"
    return {"summary": line, "summary_fleet": fleet, "startup_s": startup, "processes": processes}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.from_results is not None:
        saved = json.loads(args.from_results.read_text(encoding="utf-8"))
        saved["note"] = args.note or saved.get("note", "")
        args.doc.write_text(document(saved), encoding="utf-8")
        return 0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="suanli-center-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        results = run(args, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    args.doc.write_text(document(results), encoding="utf-8")
    say(f"wrote {args.doc} and {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
