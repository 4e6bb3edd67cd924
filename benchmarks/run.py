"""Benchmarks of the Suanli agent: `python benchmarks/run.py [--quick] [--soak SECONDS]`.

Measures, for the fake scenarios h100-8, h100-64 (64 GPUs), h100-mig-56 (8 GPUs x 7 MIG
instances) and procs-500 (500 GPU processes): scrape latency against the real agent process,
render cost, CPU and wall time per sampling cycle, NVML calls per GPU per cycle, RSS over a soak
(every scenario's agent soaked at once), and exposition size; then a load test (50 concurrent
scrapers against the h100-8 agent: latency, errors, NVML calls per cycle with and without the
load); then records the run in `benchmarks/results.json` and rewrites
`docs/benchmarks.md`. Not part of the test suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import signal
from dataclasses import asdict, replace
from typing import Any, NoReturn

from benchmarks import load, machine, memory, scrape
from benchmarks.agent_process import AgentProcess
from benchmarks.doc import DOC, write_doc
from benchmarks.history import HISTORY, load_history, save_history
from benchmarks.metrics import SECTIONS
from benchmarks.scenario import CLIENTS, FULL, QUICK, bench, say
from benchmarks.tables import number, table

SCENARIOS = ("h100-8", "h100-64", "h100-mig-56", "procs-500")
LOAD_SCENARIO = "h100-8"
LOAD_CLIENTS = 50
LOAD_CALLS_IDLE_S = 15.0  # in-process NVML call rate: idle window, then under load (capped)
LOAD_CALLS_MAX_S = 30.0


# --- the load test --------------------------------------------------------------------------


def load_test(seconds: float) -> dict[str, Any]:
    """50 scrapers against the real agent process, then the in-process NVML call comparison."""
    with AgentProcess(LOAD_SCENARIO) as agent:
        say(f"load: {LOAD_CLIENTS} scrapers for {seconds:g} s against agent pid {agent.pid}")
        rss_before, cpu_before = agent.rss_mib(), agent.cpu_seconds()
        hammered = load.hammer(agent.port, LOAD_CLIENTS, seconds)
        cpu = agent.cpu_seconds() - cpu_before
        rss_after = agent.rss_mib()
    idle_s, loaded_s = min(LOAD_CALLS_IDLE_S, seconds), min(LOAD_CALLS_MAX_S, seconds)
    say(f"load: NVML calls in-process, {idle_s:g} s idle then {loaded_s:g} s under load")
    with load.ServedAgent(LOAD_SCENARIO, "1s") as served:
        calls = load.calls_under_load(served, LOAD_CLIENTS, loaded_s, idle_s)
    return {
        "scenario": LOAD_SCENARIO,
        "interval": "1s",
        "process": {
            **asdict(hammered),
            "agent_cpu_percent": 100 * cpu / hammered.seconds,
            "rss_before_mib": rss_before,
            "rss_after_mib": rss_after,
        },
        "in_process": asdict(calls),
    }


# --- the run --------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    counts = QUICK if args.quick else FULL
    if args.requests:
        counts = replace(counts, requests=args.requests)
    date, commit = machine.utc_now(), machine.git_commit()
    say("RSS after each import, in a fresh interpreter")
    imports = memory.import_rss()
    say(f"soak: {len(args.scenarios)} agents at once for {args.soak:g} s")
    soaks = scrape.soak_all(args.scenarios, args.soak)
    scenarios = {name: bench(name, counts, soaks[name], args.profile) for name in args.scenarios}
    loaded = load_test(args.load_seconds) if args.load_seconds > 0 else None
    commit_at_end = machine.git_commit()
    if commit_at_end != commit:
        say(f"warning: the code changed during the run ({commit} -> {commit_at_end})")
        commit = f"{commit} -> {commit_at_end}"
    return {
        "date": date,
        "commit": commit,
        "machine": machine.describe(),
        "quick": args.quick,
        "soak_s": args.soak,
        "counts": {**asdict(counts), "clients": CLIENTS},
        "import_rss": imports,
        "scenarios": scenarios,
        "load": loaded,
    }


def summary(result: dict[str, Any]) -> list[str]:
    scenarios = list(result["scenarios"])
    rows = []
    for section in SECTIONS:
        for measure in section.measures:
            values = [result["scenarios"][s]["metrics"].get(measure.key) for s in scenarios]
            rows.append([measure.label, measure.unit, *(number(v, measure.digits) for v in values)])
    return table(["Measure", "Unit", *scenarios], rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="smaller counts for a smoke run (~30 s)")
    p.add_argument(
        "--soak", type=float, metavar="SECONDS", help="soak length (default 60, quick 5)"
    )
    p.add_argument("--requests", type=int, metavar="N", help="GETs per latency loop")
    p.add_argument(
        "--load-seconds",
        type=float,
        metavar="SECONDS",
        help=f"{LOAD_CLIENTS}-scraper load test length (default 60, quick 5; 0 skips it)",
    )
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), metavar="NAME")
    p.add_argument("--profile", action="store_true", help="print the top functions by own time")
    p.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        help=f"append to {HISTORY.name} and rewrite {DOC.name} (default: yes unless --quick)",
    )
    args = p.parse_args(argv)
    if args.soak is None:
        args.soak = 5.0 if args.quick else 60.0
    if args.load_seconds is None:
        args.load_seconds = 5.0 if args.quick else 60.0
    if args.record is None:
        args.record = not args.quick
    return args


def _terminate(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through the `finally`s that stop the agents


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    result = run(args)
    print("\n".join(summary(result)))
    if args.record:
        runs = [*load_history(), result]
        save_history(runs)
        write_doc(result, runs)
        say(f"recorded in {HISTORY} and {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
