"""Load: 50 concurrent scrapers must not break the agent, slow it down or make it call NVML more.

The short CI version of the benchmark's load test (`python benchmarks/run.py`, 60 s against the
real agent process): an in-process agent over the fake h100-8, wired as `agent.runner` wires it,
sampling every 500 ms and serving on 127.0.0.1; 50 threads, each with its own keep-alive
connection, GET /metrics back to back for 5 s. NVML calls are counted over whole sampling cycles
(FakeNvml.calls) with no scraper, then under the load.

The issue's latency target is p99 < 50 ms. Here the 50 client threads share the agent's
interpreter (and its GIL) and a CI runner's cores, so the client's own scheduling delays land in
every latency; the test asserts p99 < 200 ms and prints the figure. The 50 ms target is measured
against the real agent process by the benchmark and recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.load import LoadedCalls, ServedAgent, calls_under_load

CLIENTS = 50
LOAD_S = 5.0
IDLE_S = 3.0
P99_TARGET_MS = 50.0
P99_CI_LIMIT_MS = 200.0


@pytest.fixture(scope="module")
def loaded() -> LoadedCalls:
    with ServedAgent("h100-8", "500ms") as agent:
        result = calls_under_load(agent, CLIENTS, LOAD_S, IDLE_S)
    hit = result.load
    print(
        f"\n{CLIENTS} scrapers, {hit.seconds:.1f} s: {hit.requests} requests, {hit.errors} errors,"
        f" p50 {hit.p50_ms:.1f} ms, p99 {hit.p99_ms:.1f} ms (target {P99_TARGET_MS:g} ms);"
        f" NVML calls per cycle idle {result.idle.calls_per_cycle:.1f},"
        f" loaded {result.loaded.calls_per_cycle:.1f}"
    )
    return result


def test_fifty_scrapers_get_every_answer(loaded: LoadedCalls) -> None:
    assert loaded.load.errors == 0, loaded.load.first_error
    assert loaded.load.requests >= CLIENTS, "the scrapers hardly ran"


def test_fifty_scrapers_p99_latency(loaded: LoadedCalls) -> None:
    assert loaded.load.p99_ms < P99_CI_LIMIT_MS


def test_scrapes_make_no_extra_nvml_calls(loaded: LoadedCalls) -> None:
    idle, busy = loaded.idle, loaded.loaded
    assert idle.cycles >= 2 and busy.cycles >= 2
    # counted over whole cycles, so equal; a cycle's worth of slack for a count read mid-cycle
    slack = idle.calls_per_cycle / min(idle.cycles, busy.cycles)
    assert busy.calls_per_cycle == pytest.approx(idle.calls_per_cycle, abs=slack)
    # and no extra cycles: the sampler keeps its 500 ms pace under the load
    assert busy.cycles_per_second <= idle.cycles_per_second * 1.1
