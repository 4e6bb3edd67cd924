"""A long soak with hostile clients: does anything grow, does any scrape fail or slow down?

`python -m benchmarks.soak_clients [--minutes 10] [--write]` runs the agent (`--fake h100-8`,
1 s interval) under the unit's LimitNOFILE, with the attackers of `benchmarks.abuse` (900 idle,
100 slow, 50 garbage connections a second, every closed one reopened) for the whole run, and
reports each minute: scrapes, failures, p99 latency, RSS, threads and open files. With
`--write` the table goes into docs/reliability.md between the `soak-clients` markers.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.abuse import Result, attacker, machine_line, measure, prlimit_prefix, write_block
from benchmarks.agent_process import AgentProcess

IDLE, SLOW, GARBAGE = 900, 100, 50


def soak(minutes: int) -> list[Result]:
    """One `Result` per minute, against one agent under one continuous attack."""
    results: list[Result] = []
    agent = AgentProcess("h100-8", "1s", prefix=prlimit_prefix())
    with agent, attacker(agent.port, minutes * 60.0, IDLE, SLOW, GARBAGE):
        for minute in range(1, minutes + 1):
            results.append(measure(agent, 60.0))
            print(row(minute, results[-1]), flush=True)
    return results


def row(minute: int, r: Result) -> str:
    return (
        f"| {minute} | {r.scrapes} | {r.failures} | {r.p99_ms:.1f} ms | {r.max_ms:.1f} ms "
        f"| {r.rss_max_mib:.1f} MiB | {r.threads_max} | {r.files_max} |"
    )


def table(results: list[Result]) -> str:
    lines = [
        f"Measured {machine_line()}; {len(results)} min, {IDLE} idle + {SLOW} slow connections, "
        f"{GARBAGE} garbage a second (`python -m benchmarks.soak_clients --minutes "
        f"{len(results)} --write`):",
        "",
        "| minute | scrapes | failed | p99 | max | peak RSS | threads | open files |",
        "|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + [row(i, r) for i, r in enumerate(results, start=1)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=int, default=10)
    p.add_argument("--write", action="store_true", help="update docs/reliability.md")
    args = p.parse_args(argv)
    results = soak(args.minutes)
    if args.write:
        write_block("soak-clients", table(results))
    return 0 if all(r.failures == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
