"""Validation on a real GPU machine, one bounded step at a time (run by validate.sh).

    python -m benchmarks.hardware.validate STEP --out OUT --scratch DIR
    python -m benchmarks.hardware.validate child KIND [--scratch DIR]

Steps: env, agent, probes, cycle, compute, summary. Each step runs in its own process, under
its own timeout in validate.sh, so that a crash or a hang in one (an NVML call in C, a CUDA
kernel) leaves the others their turn. Children are short-lived helpers the steps start.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.hardware.common import Context


def _steps() -> dict[str, Callable[[Context], None]]:
    from benchmarks.hardware import compare, compute, cycle, env, probes, summary

    return {
        "env": env.run,
        "agent": compare.run,
        "probes": probes.run,
        "cycle": cycle.run,
        "compute": compute.run,
        "summary": summary.run,
    }


def _child(kind: str, scratch: Path | None) -> int:
    from benchmarks.hardware import compute, probes

    if kind == "fabric-agent":
        return probes.child_fabric("agent")
    if kind == "fabric-v2":
        return probes.child_fabric("v2")
    if kind == "sampler" and scratch is not None:
        return compute.child_sampler(scratch)
    print(f"validate: unknown child {kind}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="validate")
    p.add_argument("step", help="env, agent, probes, cycle, compute, summary, or child")
    p.add_argument("kind", nargs="?", help="with child: fabric-agent, fabric-v2, sampler")
    p.add_argument("--out", type=Path)
    p.add_argument("--scratch", type=Path)
    args = p.parse_args(argv)
    if args.step == "child":
        return _child(args.kind or "", args.scratch)
    steps = _steps()
    if args.step not in steps or args.out is None or args.scratch is None:
        p.error("a step name, --out and --scratch are needed")
    steps[args.step](Context(out=args.out, scratch=args.scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
