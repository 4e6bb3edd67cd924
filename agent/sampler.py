"""One sampler thread: runs every collector each interval and publishes an immutable snapshot.

Each collector runs on a worker thread of its own with the interval as its deadline, so a hung
NVML call delays nothing but its own collector: the others keep publishing, the hung one is
reported (`suanli_collector_success 0`, `/healthz`), and it is not started again until it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.collectors.base import Collector, ViewOutcome
from agent.metrics import Sample
from agent.workers import Worker

log = logging.getLogger(__name__)

STALE_INTERVALS = 3


@dataclass(frozen=True)
class CollectorResult:
    name: str
    samples: tuple[Sample, ...]
    success: bool
    duration: float
    last_success: float | None
    error: str | None = None
    failed_parts: tuple[str, ...] = ()  # parts of a collector that succeeded, e.g. "gpu/2"
    view: bool = False  # a GPU view: timed and sampled with its GPU collector


@dataclass(frozen=True)
class Snapshot:
    """Everything one cycle produced. Never mutated after publication."""

    sequence: int
    taken_at: float
    results: tuple[CollectorResult, ...]


# samples, the parts that failed, and the GPU views' outcomes
Collected = tuple[list[Sample], tuple[str, ...], tuple[ViewOutcome, ...]]


def _collecting(collector: Collector) -> Callable[[], Collected]:
    def collect() -> Collected:
        samples = collector.collect()
        views = tuple(getattr(collector, "view_outcomes", ()))
        return samples, tuple(getattr(collector, "failed_parts", ())), views

    return collect


def _view_names(collector: Collector) -> list[str]:
    return [view.name for view in getattr(collector, "views", ())]


class Sampler:
    def __init__(
        self,
        collectors: Sequence[Collector],
        interval: float,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        on_cycle: Callable[[Snapshot], None] | None = None,
        inline: bool = False,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        """`inline`: collect in the thread that calls `sample_once`, with no deadline (the
        simulator, which samples many nodes from a few threads); else one thread per collector.
        `on_stop`: called by `stop()` once the collectors are closed (`Parts.stop`)."""
        self.collectors = list(collectors)
        self._on_stop = on_stop
        self._inline = inline
        self.interval = interval
        self._clock = clock
        self._monotonic = monotonic
        self._on_cycle = on_cycle
        self._workers: dict[str, Worker[Collected]] = {}
        self._inflight: dict[str, Worker[Collected]] = {}
        self._last_success: dict[str, float] = {}
        self._logged: dict[str, str] = {}
        self._sequence = 0
        self._published = monotonic()  # when `latest` was published (else: when we began)
        self._cycle_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at = clock()
        self.latest: Snapshot | None = None

    def sample_once(self) -> Snapshot:
        """Run every collector (each bounded by the interval) and publish the snapshot."""
        deadline = self._monotonic() + self.interval
        for collector in self.collectors:
            if collector.name not in self._inflight:
                worker = self._workers.get(collector.name)
                if worker is None:
                    worker = self._workers[collector.name] = self._new_run(collector)
                worker.submit()
                self._inflight[collector.name] = worker
        results = []
        for collector in self.collectors:
            run = self._inflight[collector.name]
            while not self._stop.is_set() and not run.finished.wait(
                min(0.1, max(0.0, deadline - self._monotonic()))
            ):
                if self._monotonic() >= deadline:
                    break
            results.append(self._result(collector.name, run))
            results += self._view_results(collector, results[-1], run)
        self._sequence += 1
        snapshot = Snapshot(self._sequence, self._clock(), tuple(results))
        self.latest, self._published = snapshot, self._monotonic()
        if self._on_cycle is not None:
            self._on_cycle(snapshot)
        return snapshot

    def _new_run(self, collector: Collector) -> Worker[Collected]:
        """A collector's own long-lived daemon thread (a hung call must not block exit), or,
        `inline`, a run in the calling thread."""
        return Worker(
            f"collect-{collector.name}",
            _collecting(collector),
            inline=self._inline,
            monotonic=self._monotonic,
        )

    def _result(self, name: str, run: Worker[Collected]) -> CollectorResult:
        if not run.finished.is_set():
            waited = self._monotonic() - run.started
            error = "still running past its deadline (a hardware call is not returning)"
            self._log_once(name, error)
            return CollectorResult(name, (), False, waited, self._last_success.get(name), error)
        del self._inflight[name]
        if run.error is not None:
            error = f"{type(run.error).__name__}: {run.error}"
            self._log_once(name, error)
            return CollectorResult(
                name, (), False, run.duration, self._last_success.get(name), error
            )
        now = self._clock()
        self._last_success[name] = now
        if self._logged.pop(name, None) is not None:
            log.info("collector %s recovered", name)
        samples, failed_parts, _ = run.result or ([], (), ())
        return CollectorResult(
            name, tuple(samples), True, run.duration, now, failed_parts=failed_parts
        )

    def _view_results(
        self, collector: Collector, parent: CollectorResult, run: Worker[Collected]
    ) -> list[CollectorResult]:
        """One result per GPU view (its samples ride in the parent's): failed with the parent,
        or as the view's own outcome said."""
        if not parent.success:
            error = f"collector {parent.name} failed"
            return [
                CollectorResult(
                    name, (), False, 0.0, self._last_success.get(name), error, view=True
                )
                for name in _view_names(collector)
            ]
        results = []
        for outcome in run.result[2] if run.result else ():
            if outcome.error is not None:
                self._log_once(outcome.name, outcome.error)
                last = self._last_success.get(outcome.name)
                failed = CollectorResult(
                    outcome.name, (), False, outcome.duration, last, outcome.error, view=True
                )
                results.append(failed)
                continue
            self._last_success[outcome.name] = parent.last_success or self._clock()
            if self._logged.pop(outcome.name, None) is not None:
                log.info("collector %s recovered", outcome.name)
            results.append(
                CollectorResult(
                    outcome.name,
                    (),
                    True,
                    outcome.duration,
                    self._last_success[outcome.name],
                    view=True,
                )
            )
        return results

    def _log_once(self, name: str, error: str) -> None:
        if self._logged.get(name) != error:
            self._logged[name] = error
            log.error("collector %s failed: %s", name, error)

    def health(self) -> tuple[bool, str]:
        """(healthy, why): healthy while the sampler publishes (a snapshot within the last 3
        intervals, its thread alive) and every collector succeeded within the last 3 intervals."""
        stalled = self._stalled()
        if stalled is not None or self.latest is None:
            return False, stalled or "no sample taken yet"
        now = self._clock()
        limit = STALE_INTERVALS * self.interval
        problems = []
        for collector in self.collectors:
            last = self._last_success.get(collector.name, None)
            age = now - (last if last is not None else self.started_at)
            if age > limit:
                seen = "never succeeded" if last is None else f"last succeeded {age:.1f}s ago"
                problems.append(f"collector {collector.name} {seen} (limit {limit:.0f}s)")
        if problems:
            return False, "; ".join(problems)
        return (
            True,
            f"ok: snapshot {self.latest.sequence} taken {now - self.latest.taken_at:.1f}s ago",
        )

    def _stalled(self) -> str | None:
        """Why the sampler itself is not publishing (its thread ended, or no snapshot for 3
        intervals: stuck in a cycle), or None. Ages are monotonic: a clock step is no stall."""
        if self.latest is None:
            return "no sample taken yet"
        limit = STALE_INTERVALS * self.interval
        age = self._monotonic() - self._published
        last = f"last snapshot {self.latest.sequence} published {age:.1f}s ago"
        if self._thread is not None and not self._thread.is_alive():
            return f"sampler thread {'stopped' if self._stop.is_set() else 'died'}; {last}"
        if age > limit:
            failing = f"; last cycle failed: {self._cycle_error}" if self._cycle_error else ""
            return f"sampler stuck: {last} (limit {limit:.3g}s){failing}"
        return None

    def progressing(self) -> bool:
        """True while a live sampler keeps publishing snapshots and no collector is stuck past
        3 intervals.

        This gates the systemd watchdog: an agent stuck inside a hardware call, or whose sampler
        thread died or hangs, is restarted.
        """
        if self._stalled() is not None:
            return False
        limit = STALE_INTERVALS * self.interval
        now = self._monotonic()
        return all(now - run.started <= limit for run in list(self._inflight.values()))

    def start(self, first_delay: float = 0.0) -> None:
        """Sample on a thread every interval, the first time after `first_delay` seconds."""
        self._thread = threading.Thread(
            target=self._loop, args=(first_delay,), name="sampler", daemon=True
        )
        self._thread.start()

    def _loop(self, first_delay: float) -> None:
        next_tick = self._monotonic() + first_delay
        if self._stop.wait(first_delay):
            return
        while not self._stop.is_set():
            self._cycle()
            next_tick += self.interval
            now = self._monotonic()
            if next_tick < now:  # an overrun: skip the missed ticks rather than burst
                next_tick = now + self.interval - (now - next_tick) % self.interval
            self._stop.wait(next_tick - now)

    def _cycle(self) -> None:
        """One turn of the loop: an exception ends this cycle, never the loop. Each distinct
        one is logged once, with its traceback; a sampler that no longer publishes because of
        it shows in `health` and `progressing`."""
        try:
            self.sample_once()
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            if error != self._cycle_error:
                log.exception("sampling cycle failed: %s", error)
            self._cycle_error = error
            return
        if self._cycle_error is not None:
            log.info("sampling cycles succeed again")
            self._cycle_error = None

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for collector in self.collectors:
            if collector.name in self._inflight:
                continue  # still inside a hung call: closing under it could crash the library
            try:
                collector.close()
            except Exception as err:
                log.warning("closing collector %s: %s", collector.name, err)
        for worker in self._workers.values():
            worker.close()  # its thread ends now, or when a hung call returns
        if self._on_stop is not None:
            self._on_stop()
