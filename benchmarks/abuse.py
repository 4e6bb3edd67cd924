"""Hostile clients against the agent, and what a normal scraper sees meanwhile.

`python -m benchmarks.abuse [--seconds 20]` starts the agent (`--fake h100-8`) under the shipped
unit's file limit (`prlimit --nofile`, the unit's LimitNOFILE), then, from a separate process so
that the scraper's timings are not the attackers' GIL: `--idle` connections that never send,
`--slow` ones dripping a header a byte per 200 ms, `--garbage` connections a second sending
random bytes and 20 KiB header lines; every connection the agent closes is reopened (up to 1,000
a second). Meanwhile one scraper GETs /metrics on a fresh connection 20 times a second. Prints
latency percentiles, failures, and the agent's peak RSS, threads and file descriptors.
`tests/test_http_slow_clients.py` runs the same for 15 s and asserts on it; `benchmarks/
soak_clients.py` runs it for long.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.agent_process import LOOPBACK, AgentProcess
from benchmarks.machine import ROOT, describe, git_commit, utc_now

UNIT = ROOT / "deploy" / "systemd" / "suanli-agent.service"
DOC = ROOT / "docs" / "reliability.md"
ROUND_S = 0.2
REOPEN_PER_ROUND = 200


def unit_limit(key: str) -> int:
    """LimitNOFILE or TasksMax as the shipped unit sets it."""
    for line in UNIT.read_text().splitlines():
        if line.startswith(f"{key}="):
            return int(line.partition("=")[2])
    raise KeyError(key)


def prlimit_prefix() -> tuple[str, ...]:
    files = unit_limit("LimitNOFILE")
    return ("prlimit", f"--nofile={files}:{files}", "--")


# --- the attackers (run as their own process) ----------------------------------------------------


def _open(port: int, first: bytes = b"") -> socket.socket | None:
    try:
        sock = socket.create_connection((LOOPBACK, port), timeout=1)
        if first:
            sock.sendall(first)
        sock.setblocking(False)
        return sock
    except OSError:
        return None


def _alive(socks: list[socket.socket]) -> list[socket.socket]:
    """Those the agent has not closed (a closed one reads as readable: EOF or reset)."""
    if not socks:
        return socks
    readable = set(select.select(socks, [], [], 0)[0])
    for sock in readable:
        sock.close()
    return [s for s in socks if s not in readable]


def _garbage(port: int, count: int) -> None:
    for i in range(count):
        junk = random.randbytes(random.randint(1, 2000))
        if i % 2:
            junk = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
        sock = _open(port, junk)
        if sock is not None:
            sock.close()


def attack(port: int, idle: int, slow: int, garbage: int, seconds: float) -> None:
    idles: list[socket.socket] = []
    slows: list[socket.socket] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        idles, slows = _alive(idles), _alive(slows)
        for _ in range(min(idle - len(idles), REOPEN_PER_ROUND)):
            sock = _open(port)
            if sock is not None:
                idles.append(sock)
        for _ in range(min(slow - len(slows), REOPEN_PER_ROUND)):
            sock = _open(port, b"GET /metrics HTTP/1.1\r\nX-Slow: ")
            if sock is not None:
                slows.append(sock)
        for sock in slows:
            with contextlib.suppress(OSError):
                sock.send(b"a")
        _garbage(port, int(garbage * ROUND_S))
        time.sleep(ROUND_S)


# --- the scraper and the measurement -------------------------------------------------------------


@dataclass
class Result:
    seconds: float
    scrapes: int = 0
    failures: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    rss_start_mib: float = 0.0
    rss_max_mib: float = 0.0
    threads_max: int = 0
    files_max: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)


def scrape_ms(agent: AgentProcess) -> float | None:
    """One scrape on a fresh connection (TLS and basic auth when the agent has a web config)."""
    began = time.perf_counter()
    try:
        status, body = agent.get("/metrics")
    except (OSError, http.client.HTTPException):
        return None
    if status != 200 or b"suanli_gpu_up" not in body:
        return None
    return (time.perf_counter() - began) * 1000


def measure(agent: AgentProcess, seconds: float, rate: float = 20.0) -> Result:
    result = Result(seconds, rss_start_mib=agent.rss_mib())
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        took = scrape_ms(agent)
        result.scrapes += 1
        if took is None:
            result.failures += 1
        else:
            result.latencies_ms.append(took)
        result.rss_max_mib = max(result.rss_max_mib, agent.rss_mib())
        result.threads_max = max(result.threads_max, agent.threads())
        result.files_max = max(result.files_max, agent.open_files())
        time.sleep(max(0.0, 1 / rate - (took or 0) / 1000))
    ms = sorted(result.latencies_ms) or [0.0]
    result.p50_ms = ms[len(ms) // 2]
    result.p99_ms = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    result.max_ms = ms[-1]
    return result


@contextmanager
def attacker(port: int, seconds: float, idle: int, slow: int, garbage: int) -> Iterator[None]:
    """An attacker process against `port` for the duration of the block (at most `seconds`)."""
    command = [sys.executable, "-m", "benchmarks.abuse", "--attack-port", str(port)]
    command += ["--idle", str(idle), "--slow", str(slow), "--garbage", str(garbage)]
    command += ["--seconds", str(seconds + 5)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        time.sleep(3)  # let it open its connections
        yield
    finally:
        process.kill()
        process.wait()


def attacked(agent: AgentProcess, seconds: float, idle: int, slow: int, garbage: int) -> Result:
    """`measure` while an attacker process holds idle, slow and garbage connections."""
    with attacker(agent.port, seconds, idle, slow, garbage):
        return measure(agent, seconds)


def machine_line() -> str:
    m = describe()
    return (
        f"{utc_now()}, commit {git_commit()}, {m['cpu']} ({m['cores']} cores, shared), "
        f"{m['memory_gib']} GiB, Python {m['python']}, {m['kernel']}"
    )


def write_block(name: str, text: str, path: Path = DOC) -> None:
    """Replace what is between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in `path`."""
    doc = path.read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    head, _, rest = doc.partition(begin)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{begin}\n{text.rstrip()}\n{end}{tail}")


def abuse_table(result: Result, idle: int, slow: int, garbage: int) -> str:
    return "\n".join(
        [
            f"Measured {machine_line()}; {result.seconds:.0f} s, {idle} idle + {slow} slow "
            f"connections, {garbage} garbage connections a second (`python -m benchmarks.abuse "
            "--write`):",
            "",
            "| scrapes | failed | p50 | p99 | max | agent RSS start → peak | threads (TasksMax) "
            "| open files (LimitNOFILE) |",
            "|---|---|---|---|---|---|---|---|",
            f"| {result.scrapes} | {result.failures} | {result.p50_ms:.1f} ms "
            f"| {result.p99_ms:.1f} ms | {result.max_ms:.1f} ms "
            f"| {result.rss_start_mib:.0f} → {result.rss_max_mib:.0f} MiB "
            f"| {result.threads_max} ({unit_limit('TasksMax')}) "
            f"| {result.files_max} ({unit_limit('LimitNOFILE')}) |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--idle", type=int, default=900)
    p.add_argument("--slow", type=int, default=100)
    p.add_argument("--garbage", type=int, default=50)
    p.add_argument("--attack-port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--write", action="store_true", help="update docs/reliability.md")
    args = p.parse_args(argv)
    if args.attack_port:
        attack(args.attack_port, args.idle, args.slow, args.garbage, args.seconds)
        return 0
    with AgentProcess("h100-8", "1s", prefix=prlimit_prefix()) as agent:
        result = attacked(agent, args.seconds, args.idle, args.slow, args.garbage)
    summary = {k: v for k, v in asdict(result).items() if k != "latencies_ms"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if args.write:
        write_block("abuse", abuse_table(result, args.idle, args.slow, args.garbage))
    return 0 if result.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
