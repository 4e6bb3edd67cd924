"""The sampler: collectors are isolated, a hang never stops the others, health says why."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import pytest

from agent.metrics import MetricSpec, Sample
from agent.sampler import Sampler, Snapshot

TEMP = MetricSpec("suanli_test_temperature_celsius", "gauge", "A test gauge.", ("sensor",))


class Steady:
    name = "steady"

    def __init__(self) -> None:
        self.calls = 0

    def specs(self) -> Sequence[MetricSpec]:
        return [TEMP]

    def collect(self) -> list[Sample]:
        self.calls += 1
        return [Sample(TEMP, ("inlet",), 24.0 + self.calls)]

    def close(self) -> None:
        pass


class Failing:
    name = "failing"

    def __init__(self, message: str = "cannot read /proc/stat") -> None:
        self.message = message
        self.closed = False

    def specs(self) -> Sequence[MetricSpec]:
        return []

    def collect(self) -> list[Sample]:
        raise OSError(self.message)

    def close(self) -> None:
        self.closed = True


class Hanging:
    """A collector stuck in a hardware call until released."""

    name = "hanging"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = 0
        self.closed = False

    def specs(self) -> Sequence[MetricSpec]:
        return []

    def collect(self) -> list[Sample]:
        self.entered += 1
        self.release.wait(10)
        return []

    def close(self) -> None:
        self.closed = True


def test_a_failing_collector_leaves_the_others_in_the_snapshot(caplog) -> None:  # type: ignore[no-untyped-def]
    steady, failing = Steady(), Failing()
    sampler = Sampler([steady, failing], interval=1.0)
    for _ in range(3):
        snapshot = sampler.sample_once()
    by_name = {r.name: r for r in snapshot.results}
    assert by_name["steady"].success and by_name["steady"].samples[0].value == 27.0
    assert not by_name["failing"].success and by_name["failing"].samples == ()
    assert by_name["failing"].error == "OSError: cannot read /proc/stat"
    # the same problem three times is logged once
    assert sum("cannot read /proc/stat" in r.message for r in caplog.records) == 1


def test_a_hung_collector_never_delays_the_snapshot_beyond_the_interval() -> None:
    hanging = Hanging()
    sampler = Sampler([Steady(), hanging], interval=0.2)
    started = time.monotonic()
    first = sampler.sample_once()
    second = sampler.sample_once()
    assert time.monotonic() - started < 1.0
    for snapshot in (first, second):
        by_name = {r.name: r for r in snapshot.results}
        assert by_name["steady"].success
        assert not by_name["hanging"].success
        assert "still running" in (by_name["hanging"].error or "")
    assert hanging.entered == 1, "a stuck collector is not started again while it is stuck"
    hanging.release.set()
    time.sleep(0.05)
    third = sampler.sample_once()
    assert all(r.success for r in third.results), "the late result is taken when it arrives"
    sampler.sample_once()
    assert hanging.entered == 2


def test_a_stuck_collector_is_logged_once(caplog) -> None:  # type: ignore[no-untyped-def]
    hanging = Hanging()
    sampler = Sampler([hanging], interval=0.05)
    for _ in range(4):
        sampler.sample_once()
    hanging.release.set()
    assert sum("still running" in r.message for r in caplog.records) == 1


def test_health_names_the_collector_that_stopped_succeeding() -> None:
    now = [1000.0]
    sampler = Sampler([Steady(), Failing()], interval=5.0, clock=lambda: now[0])
    ok, why = sampler.health()
    assert not ok and why == "no sample taken yet"
    sampler.sample_once()
    ok, why = sampler.health()
    assert ok, why  # the failing one has 3 intervals of grace after start
    now[0] += 16.0
    sampler.sample_once()
    ok, why = sampler.health()
    assert not ok
    assert why == "collector failing never succeeded (limit 15s)"


def test_progress_stops_while_a_collector_is_stuck_past_three_intervals() -> None:
    hanging = Hanging()
    sampler = Sampler([hanging], interval=0.05)
    sampler.sample_once()
    assert sampler.progressing()
    time.sleep(0.2)
    sampler.sample_once()
    assert not sampler.progressing(), "the systemd watchdog must be allowed to restart us"
    hanging.release.set()


def test_stop_closes_collectors_but_not_one_stuck_in_a_call() -> None:
    failing, hanging = Failing(), Hanging()
    sampler = Sampler([failing, hanging], interval=0.05)
    sampler.start()
    time.sleep(0.15)
    started = time.monotonic()
    sampler.stop()
    assert time.monotonic() - started < 1.5
    assert failing.closed and not hanging.closed
    hanging.release.set()


def test_the_loop_samples_every_interval() -> None:
    steady = Steady()
    sampler = Sampler([steady], interval=0.05)
    sampler.start()
    time.sleep(0.33)
    sampler.stop()
    assert 5 <= steady.calls <= 8
    assert sampler.latest is not None and sampler.latest.sequence == steady.calls


# --- the sampler itself: a cycle that raises never ends the loop; a dead or stuck one is seen ---


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_cycle_that_raises_is_logged_once_and_the_loop_goes_on(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="agent.sampler")
    failures = [RuntimeError("exporter hook broke")] * 3

    def on_cycle(snapshot: Snapshot) -> None:
        if failures and threading.current_thread().name == "sampler":
            raise failures.pop()

    steady = Steady()
    sampler = Sampler([steady], interval=0.05, on_cycle=on_cycle)
    sampler.start()
    try:
        assert wait_until(lambda: not failures and steady.calls >= 6), "the loop died"
        assert wait_until(lambda: sampler.health()[0])
        assert sampler.progressing()
    finally:
        sampler.stop()
    logged = [r for r in caplog.records if "exporter hook broke" in r.getMessage()]
    assert len(logged) == 1, "the same failure three times is logged once"
    assert logged[0].exc_info is not None, "with its traceback"
    assert any("succeed again" in r.getMessage() for r in caplog.records)


def test_a_sampler_thread_blocked_forever_is_unhealthy_and_not_progressing() -> None:
    block = threading.Event()
    release = threading.Event()

    def on_cycle(snapshot: Snapshot) -> None:
        if block.is_set() and threading.current_thread().name == "sampler":
            release.wait(10)

    sampler = Sampler([Steady()], interval=0.05, on_cycle=on_cycle)
    sampler.sample_once()
    sampler.start(first_delay=0.05)
    try:
        assert sampler.health()[0] and sampler.progressing()
        block.set()
        assert wait_until(lambda: not sampler.progressing(), timeout=2.0)
        healthy, why = sampler.health()
        assert not healthy
        assert why.startswith("sampler stuck: last snapshot "), why
        assert "(limit 0.15s)" in why and "\n" not in why
    finally:
        release.set()
        sampler.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_sampler_thread_that_died_is_unhealthy_and_not_progressing() -> None:
    def on_cycle(snapshot: Snapshot) -> None:
        if threading.current_thread().name == "sampler":
            raise SystemExit  # not an Exception: nothing in the loop may catch it

    sampler = Sampler([Steady()], interval=10.0, on_cycle=on_cycle)
    sampler.sample_once()
    assert sampler.health()[0] and sampler.progressing()
    sampler.start()
    assert wait_until(lambda: sampler._thread is not None and not sampler._thread.is_alive())
    healthy, why = sampler.health()
    assert not healthy
    assert why.startswith("sampler thread died; last snapshot 2 published"), why
    assert not sampler.progressing(), "well within 3 intervals: a dead thread is seen at once"
    sampler.stop()


def test_a_wall_clock_step_is_not_a_stall() -> None:
    now = [1000.0]
    sampler = Sampler([Steady()], interval=1.0, clock=lambda: now[0])
    sampler.sample_once()
    now[0] += 3600.0  # NTP steps the clock an hour ahead
    assert sampler.progressing()
    ticks = [0.0]
    stale = Sampler([Steady()], interval=1.0, monotonic=lambda: ticks[0])
    stale.sample_once()
    ticks[0] += 3.5
    assert not stale.progressing()
    assert stale.health()[1].startswith("sampler stuck: last snapshot 1 published 3.5s ago")
