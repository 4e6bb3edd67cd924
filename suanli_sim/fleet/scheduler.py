"""One thread samples every node once per interval, node i at offset i x interval / N.

Staggering spreads the work evenly over the interval, as independent agents' clocks would be.
A node sampled late is sampled at once (the ones after it catch up), never skipped; a whole
cycle that overruns its interval by more than a tenth of it starts the next one late and counts
as behind. `Stats` keeps what the per-minute log line reports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)
BEHIND = 0.1  # a cycle ending later than this share of the interval past its end is behind


class Sampled(Protocol):
    def sample(self) -> None: ...


@dataclass
class Stats:
    cycles: int = 0
    last_cycle_s: float = 0.0  # wall time from a cycle's start to its last node's sample
    last_busy_s: float = 0.0  # time spent sampling in that cycle
    max_lag_s: float = 0.0  # the latest a node was sampled after its due time, since reset
    behind: int = 0  # cycles that overran the interval, since reset
    failures: int = 0  # samples that raised, since start

    def reset_window(self) -> None:
        self.max_lag_s, self.behind = 0.0, 0


class Scheduler:
    """Samples `nodes` on one daemon thread until `stop()`."""

    def __init__(
        self,
        nodes: Sequence[Sampled],
        interval: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nodes = list(nodes)
        self.interval = interval
        self.stats = Stats()
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, first_delay: float = 0.0) -> None:
        self._thread = threading.Thread(
            target=self._loop, args=(first_delay,), name="simulate-sampler", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the sample in progress (before the nodes are closed under it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the sampling thread did not stop within %.0f s", timeout)

    def _loop(self, first_delay: float) -> None:
        start = self._monotonic() + first_delay
        cycle = 0
        while not self._stop.is_set():
            cycle_start = start + cycle * self.interval
            if not self._cycle(cycle_start):
                return
            cycle += 1
            now = self._monotonic()
            if now - (start + cycle * self.interval) > BEHIND * self.interval:
                self.stats.behind += 1  # overran: the next cycle starts now, not in the past
                start = now - cycle * self.interval

    def _cycle(self, cycle_start: float) -> bool:
        """Sample every node at its offset; False when stopped meanwhile."""
        step = self.interval / max(1, len(self.nodes))
        busy = 0.0
        for i, node in enumerate(self.nodes):
            due = cycle_start + i * step
            wait = due - self._monotonic()
            if self._stop.wait(wait) if wait > 0 else self._stop.is_set():
                return False
            began = self._monotonic()
            self.stats.max_lag_s = max(self.stats.max_lag_s, began - due)
            try:
                node.sample()
            except Exception:  # a collector's own failures are reported in its metrics
                self.stats.failures += 1
                log.exception("sampling node %d failed", i)
            busy += self._monotonic() - began
        self.stats.cycles += 1
        self.stats.last_cycle_s = self._monotonic() - cycle_start
        self.stats.last_busy_s = busy
        return True
