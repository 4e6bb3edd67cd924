"""Load test: many concurrent keep-alive scrapers, and the NVML calls the agent makes meanwhile.

Latency and errors come from the real agent process (`python -m agent --fake ...`); NVML calls
come from an in-process agent (the same `build` / `listen` / `serve_in_thread` / `Sampler.start`
wiring as `agent.runner`) over a FakeNvml whose `calls` counter we can read. Also used by
`tests/test_load.py`, the short CI version.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType

from agent.app import Agent
from agent.server import AgentHTTPServer, AgentState, listen, serve_in_thread
from benchmarks.agent_process import LOOPBACK
from benchmarks.inprocess import build_fake
from benchmarks.nvml_calls import foreground
from benchmarks.scrape import Scraper, percentile
from suanli_sim.fake_nvml import FakeNvml

POLL_S = 0.005


# --- the scrapers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    clients: int
    seconds: float
    requests: int
    errors: int
    first_error: str
    p50_ms: float
    p99_ms: float
    max_ms: float
    per_second: float


@dataclass
class _Client:
    latencies: list[float]
    errors: int = 0
    first_error: str = ""


def _scrape_until(port: int, deadline: float, client: _Client, ready: threading.Barrier) -> None:
    """One keep-alive connection GETting /metrics back to back until `deadline`."""
    scraper = Scraper(port)
    try:
        ready.wait()
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                scraper.get()
            except Exception as err:  # counted, then a new connection: a load test goes on
                client.errors += 1
                client.first_error = client.first_error or repr(err)
                scraper.close()
                scraper = Scraper(port)
                continue
            client.latencies.append(time.perf_counter() - start)
    finally:
        scraper.close()


def hammer(port: int, clients: int, seconds: float) -> LoadResult:
    """`clients` threads scraping as fast as they are answered for `seconds` (closed loop)."""
    ready = threading.Barrier(clients + 1)
    slots = [_Client([]) for _ in range(clients)]
    deadline = time.monotonic() + seconds + 1.0  # the barrier below takes the first second
    threads = [
        threading.Thread(target=_scrape_until, args=(port, deadline, slot, ready), daemon=True)
        for slot in slots
    ]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, deadline - seconds - time.monotonic()))
    ready.wait(10.0)
    start = time.monotonic()
    for thread in threads:
        thread.join(seconds + 30.0)
    return _summarize(slots, clients, time.monotonic() - start)


def _summarize(slots: list[_Client], clients: int, wall: float) -> LoadResult:
    ms = [value * 1000 for slot in slots for value in slot.latencies] or [0.0]
    errors = sum(slot.errors for slot in slots)
    first = next((slot.first_error for slot in slots if slot.first_error), "")
    requests = sum(len(slot.latencies) for slot in slots)
    return LoadResult(
        clients=clients,
        seconds=wall,
        requests=requests,
        errors=errors,
        first_error=first,
        p50_ms=percentile(ms, 0.50),
        p99_ms=percentile(ms, 0.99),
        max_ms=max(ms),
        per_second=requests / wall if wall else 0.0,
    )


# --- the in-process agent -------------------------------------------------------------------


class ServedAgent:
    """`with ServedAgent("h100-8", "500ms") as agent:` an agent sampling and serving on loopback,
    wired as `agent.runner.run` wires it, with its FakeNvml at hand."""

    def __init__(self, scenario: str, interval: str = "1s") -> None:
        built: tuple[Agent, FakeNvml] = build_fake(scenario, interval=interval)
        self.agent, self.fake = built
        self._server: AgentHTTPServer | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the agent is not serving")
        return int(self._server.server_address[1])

    def __enter__(self) -> ServedAgent:
        sampler = self.agent.sampler
        state = AgentState(self.agent.renderer, lambda: sampler.latest, sampler.health)
        self._server = listen((LOOPBACK, 0), state)
        sampler.sample_once()
        sampler.start(first_delay=sampler.interval)
        serve_in_thread(self._server)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.agent.sampler.stop()

    def sequence(self) -> int:
        latest = self.agent.sampler.latest
        return 0 if latest is None else latest.sequence

    def next_cycle(self, timeout: float = 10.0) -> tuple[int, float]:
        """Wait for a new snapshot; then (its sequence, NVML calls so far, event thread left out).

        Read just after a snapshot is published, the count holds whole cycles only."""
        seen, deadline = self.sequence(), time.monotonic() + timeout
        while self.sequence() == seen:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no sampling cycle within {timeout:g} s")
            time.sleep(POLL_S)
        return self.sequence(), foreground(self.fake.calls)


@dataclass(frozen=True)
class CallRate:
    cycles: int
    seconds: float
    calls_per_cycle: float
    calls_per_second: float
    cycles_per_second: float


def call_rate(agent: ServedAgent, seconds: float) -> CallRate:
    """NVML calls per cycle and per second over whole cycles spanning about `seconds`."""
    first_seq, first_calls = agent.next_cycle()
    start = time.monotonic()
    time.sleep(max(0.0, seconds - 2 * agent.agent.sampler.interval))
    last_seq, last_calls = agent.next_cycle()
    wall = time.monotonic() - start
    cycles = max(1, last_seq - first_seq)
    return CallRate(
        cycles=cycles,
        seconds=wall,
        calls_per_cycle=(last_calls - first_calls) / cycles,
        calls_per_second=(last_calls - first_calls) / wall,
        cycles_per_second=cycles / wall,
    )


@dataclass(frozen=True)
class LoadedCalls:
    idle: CallRate
    loaded: CallRate
    load: LoadResult


def calls_under_load(
    agent: ServedAgent, clients: int, seconds: float, idle_seconds: float
) -> LoadedCalls:
    """NVML call rate with no scraper, then while `clients` scrapers hammer the agent."""
    idle = call_rate(agent, idle_seconds)
    outcome: list[LoadResult] = []
    worker = threading.Thread(
        target=lambda: outcome.append(hammer(agent.port, clients, seconds)), daemon=True
    )
    worker.start()
    time.sleep(1.0)  # the scrapers connect during the hammer's first second
    loaded = call_rate(agent, seconds - 1.0)
    worker.join(seconds + 60.0)
    if not outcome:
        raise RuntimeError("the scrapers did not finish")
    return LoadedCalls(idle, loaded, outcome[0])
