"""Liveness is honest, serving: a sampler that stops publishing fails /healthz and starves the
systemd watchdog; a cycle that raises once costs nothing.

Each test serves a real agent process (the runner, its HTTP server and sd_notify on a real unix
datagram socket) whose sampler runs a hook after every cycle; the test arms the hook by
creating a file: `hang` blocks the sampler thread forever, `die` ends it, `raise` raises once.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, agent_env, http_get, pick_free_port
from tests.test_systemd import receive_until

INTERVAL = 0.1  # limit: 3 intervals without a snapshot
WATCHDOG_USEC = "200000"  # the runner checks progress every 0.1 s


def serve(mode: str, armed: str, port: int) -> int:
    """The agent `python -c` runs: one steady collector, the hook after every cycle."""
    from agent.app import Agent
    from agent.config import Config
    from agent.exposition import Renderer
    from agent.metrics import MetricSpec, Sample
    from agent.runner import run
    from agent.sampler import Sampler, Snapshot

    spec = MetricSpec("suanli_test_ticks", "gauge", "A test gauge.", ())

    class Steady:
        name = "steady"

        def specs(self) -> Sequence[MetricSpec]:
            return [spec]

        def collect(self) -> list[Sample]:
            return [Sample(spec, (), 1.0)]

        def close(self) -> None:
            pass

    fired: list[str] = []

    def hook(snapshot: Snapshot) -> None:
        if threading.current_thread().name != "sampler" or not Path(armed).exists():
            return
        if mode == "hang":
            threading.Event().wait()
        if mode == "die":
            raise SystemExit  # what no `except Exception` catches: the thread ends
        if not fired:
            fired.append(mode)
            raise RuntimeError("a hook failed once")

    collectors = [Steady()]
    sampler = Sampler(collectors, INTERVAL, on_cycle=hook)
    agent = Agent(Config(), list(collectors), sampler, Renderer([spec]))
    return run(agent, ("127.0.0.1", port))


def healthz(port: int) -> tuple[int, str]:
    response = http_get(port, "/healthz")
    return response.status, response.text


def wait_for_status(port: int, status: int, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    seen: tuple[int, str] = (0, "")
    while time.monotonic() < deadline:
        try:
            seen = healthz(port)
        except OSError:
            seen = (0, "not answering")
        if seen[0] == status:
            return seen[1]
        time.sleep(0.05)
    raise AssertionError(f"/healthz never answered {status}; last {seen}")


def drain(sock: socket.socket, seconds: float) -> list[str]:
    """Every datagram that arrives within `seconds`."""
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    sock.settimeout(10.0)
    return got


@dataclass
class Served:
    """An agent process serving with the hook, and the socket its sd_notify datagrams reach."""

    proc: subprocess.Popen[bytes]
    port: int
    armed: Path
    notify: socket.socket
    stderr_path: Path

    def arm(self) -> None:
        self.armed.touch()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@pytest.fixture
def serve_with_hook(tmp_path: Path) -> Iterator[Callable[[str], Served]]:
    """Factory: `serve_with_hook(mode)` starts the agent and returns once it said READY."""
    started: list[Served] = []

    def start(mode: str) -> Served:
        n = len(started)
        port, armed, stderr_path = pick_free_port(), tmp_path / f"armed{n}", tmp_path / f"{n}.err"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(tmp_path / f"notify{n}.sock"))
        sock.settimeout(10.0)
        code = (
            "import sys; from tests.test_liveness import serve; "
            f"sys.exit(serve({mode!r}, {str(armed)!r}, {port}))"
        )
        env = {"NOTIFY_SOCKET": str(tmp_path / f"notify{n}.sock"), "WATCHDOG_USEC": WATCHDOG_USEC}
        with stderr_path.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", code],
                cwd=REPO_ROOT,
                env=agent_env(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        served = Served(proc, port, armed, sock, stderr_path)
        started.append(served)
        receive_until(sock, "READY=1")
        return served

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait(5)
        served.notify.close()


def test_a_sampler_blocked_forever_fails_healthz_and_starves_the_watchdog(
    serve_with_hook: Callable[[str], Served],
) -> None:
    agent = serve_with_hook("hang")
    receive_until(agent.notify, "WATCHDOG=1")
    assert wait_for_status(agent.port, 200).startswith("ok")

    agent.arm()
    started = time.monotonic()
    why = wait_for_status(agent.port, 503)
    assert time.monotonic() - started < 10 * INTERVAL, "within a few intervals"
    assert why.startswith("sampler stuck: last snapshot "), why
    assert why.count("\n") == 1, "one line"
    drain(agent.notify, 0.3)  # what was sent before the stall was seen
    after = drain(agent.notify, 1.0)
    assert not [m for m in after if "WATCHDOG=1" in m], after
    assert healthz(agent.port)[0] == 503, "and it stays so"
    agent.proc.terminate()
    assert agent.proc.wait(5) == 0, agent.stderr()


def test_a_sampler_thread_that_died_fails_healthz_and_starves_the_watchdog(
    serve_with_hook: Callable[[str], Served],
) -> None:
    agent = serve_with_hook("die")
    receive_until(agent.notify, "WATCHDOG=1")

    agent.arm()
    why = wait_for_status(agent.port, 503)
    assert why.startswith("sampler thread died; last snapshot "), why
    drain(agent.notify, 0.3)
    after = drain(agent.notify, 1.0)
    assert not [m for m in after if "WATCHDOG=1" in m], after


def test_a_cycle_that_raises_once_costs_nothing(serve_with_hook: Callable[[str], Served]) -> None:
    agent = serve_with_hook("raise")
    agent.arm()
    deadline = time.monotonic() + 5
    while "a hook failed once" not in agent.stderr():
        assert time.monotonic() < deadline, agent.stderr()
        time.sleep(0.05)
    drain(agent.notify, 0.1)
    assert wait_for_status(agent.port, 200).startswith("ok")
    receive_until(agent.notify, "WATCHDOG=1")
    time.sleep(5 * INTERVAL)
    status, why = healthz(agent.port)
    assert status == 200, why
    first = int(why.split()[2])
    time.sleep(3 * INTERVAL)
    assert int(healthz(agent.port)[1].split()[2]) > first, "snapshots keep coming"
    assert agent.stderr().count("sampling cycle failed") == 1, agent.stderr()
