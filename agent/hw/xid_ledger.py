"""One count per XID, whichever of NVML's event API and the kernel log reported it.

The driver reports each XID twice: as an NVML event to every registered event set, and as an
`NVRM: Xid (PCI:...)` line in the kernel log. Either can miss one: the event API sees nothing
from before the agent registered and nothing from a GPU it could not register, the kernel log
can be overwritten or unreadable. So both feed this ledger, keyed by the GPU's PCI address
(both sources name it, and it survives a GPU that no longer answers), and a sighting from one
source that matches an unmatched sighting of the same GPU and code from the other source within
`window_s` seconds of arrival is the same fault: counted once. A burst of 1,000 identical XIDs
seen by both sources counts 1,000.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Hashable

from agent.hw import XidRecord

SOURCES = ("nvml", "kmsg")


def worth_logging(count: int) -> bool:
    """Log the 1st, 10th, 100th... of a GPU's XID: a storm of 1,000 is four lines, not 1,000."""
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1


class XidLedger:
    """Thread-safe: fed by the event listener and the kernel-log thread, read by the sampler."""

    def __init__(
        self,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._counts: defaultdict[Hashable, defaultdict[int, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self._last_seen: dict[tuple[Hashable, int], float] = {}
        # unmatched sightings (arrival times) per (GPU, code, source)
        self._pending: defaultdict[tuple[Hashable, int, str], deque[float]] = defaultdict(deque)

    def sighting(self, gpu: Hashable, code: int, source: str, at: float | None = None) -> int:
        """Record that `source` saw XID `code` on `gpu` (at wall time `at`, default now).

        The GPU's count of that XID after counting it; 0 when it was the other source's
        sighting of the same fault, already counted.
        """
        arrived = self._monotonic()
        with self._lock:
            other = next(s for s in SOURCES if s != source)
            theirs = self._pending.get((gpu, code, other))
            while theirs and arrived - theirs[0] > self.window_s:
                theirs.popleft()
            if theirs:
                theirs.popleft()
                return 0
            mine = self._pending[(gpu, code, source)]
            while mine and arrived - mine[0] > self.window_s:
                mine.popleft()
            mine.append(arrived)
            self._counts[gpu][code] += 1
            when = self._clock() if at is None else at
            key = (gpu, code)
            self._last_seen[key] = max(when, self._last_seen.get(key, when))
            return self._counts[gpu][code]

    def record(self) -> XidRecord:
        with self._lock:
            counts = {gpu: dict(codes) for gpu, codes in self._counts.items()}
            return XidRecord(counts, dict(self._last_seen))
