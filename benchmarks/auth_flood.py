"""A wrong-password flood against an agent with basic auth: how much CPU does it cost the agent?

`python -m benchmarks.auth_flood [--seconds 10] [--write]`: the agent (`--fake h100-8`) with one
bcrypt user (cost 10); 4 threads send GETs with wrong passwords on fresh connections as fast as
they are answered, while a scraper with the right password scrapes 10 times a second. Reports
the agent's CPU (% of a core), the answers by status and the scraper's latency. Without the
throttle every attempt cost a bcrypt check: more than a core (issue 18).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import bcrypt

from benchmarks.abuse import Result, machine_line, measure, write_block
from benchmarks.agent_process import LOOPBACK, AgentProcess, Web

USER, PASSWORD = "prometheus", b"right"


def flood(port: int, until: float, counts: Counter[int]) -> None:
    wrong = "Basic " + base64.b64encode(f"{USER}:wrong".encode()).decode()
    while time.monotonic() < until:
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
        try:
            connection.request("GET", "/metrics", headers={"Authorization": wrong})
            response = connection.getresponse()
            response.read()
            counts[response.status] += 1
        except (OSError, http.client.HTTPException):
            counts[0] += 1
        finally:
            connection.close()


def run(seconds: float) -> tuple[float, Counter[int], Result]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "web.yml"
        hashed = bcrypt.hashpw(PASSWORD, bcrypt.gensalt(10)).decode()
        path.write_text(f"basic_auth_users: {{{USER}: '{hashed}'}}\n")
        right = base64.b64encode(f"{USER}:{PASSWORD.decode()}".encode()).decode()
        web = Web(path, None, {"Authorization": f"Basic {right}"})
        with AgentProcess("h100-8", "1s", web=web) as agent:
            counts: Counter[int] = Counter()
            until = time.monotonic() + seconds
            threads = [
                threading.Thread(target=flood, args=(agent.port, until, counts)) for _ in range(4)
            ]
            cpu = agent.cpu_seconds()
            for thread in threads:
                thread.start()
            result = measure(agent, seconds, rate=10)
            for thread in threads:
                thread.join()
            used = (agent.cpu_seconds() - cpu) / seconds * 100
    return used, counts, result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--write", action="store_true", help="update docs/reliability.md")
    args = p.parse_args(argv)
    used, counts, result = run(args.seconds)
    text = (
        f"Measured {machine_line()}; {args.seconds:.0f} s of wrong passwords from 4 threads "
        f"(`python -m benchmarks.auth_flood --write`): agent CPU {used:.0f} % of a core; "
        f"answers {dict(sorted(counts.items()))} (401: checked by bcrypt, 429: throttled); "
        f"the scraper with the right password: {result.scrapes} scrapes, {result.failures} "
        f"failed, p99 {result.p99_ms:.1f} ms."
    )
    print(text)
    if args.write:
        write_block("auth-flood", text)
    return 0 if result.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
