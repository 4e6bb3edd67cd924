"""Failed basic-auth attempts, throttled per client address and overall.

Each failed bcrypt check costs tens of milliseconds of CPU by design, so a wrong-password flood
would otherwise buy an attacker a core. After `per_client` failures within `window` seconds a
client gets 429 without a check until the oldest one ages out; after `overall` failures from
anyone, every unverified attempt does. Verified credentials are cached (agent.basicauth) and
never reach the throttle, so a scraper with the right password is not held back by a flood.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

PER_CLIENT = 10
OVERALL = 60
WINDOW_S = 60.0
MAX_CLIENTS = 4096  # addresses remembered; the least recently failing are forgotten first


class Throttle:
    """Not thread-safe: used from the HTTP loop's thread only."""

    def __init__(
        self,
        per_client: int = PER_CLIENT,
        overall: int = OVERALL,
        window: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_client, self._overall, self._window = per_client, overall, window
        self._clock = clock
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque(maxlen=overall)

    def allowed(self, client: str, checking: int = 0) -> bool:
        """Whether an attempt from `client` may be checked now, with `checking` of its attempts
        still being checked (each may yet fail)."""
        since = self._clock() - self._window
        _prune(self._all, since)
        failures = self._clients.get(client)
        if failures is not None:
            _prune(failures, since)
            if not failures:
                del self._clients[client]
        if len(failures or ()) + checking >= self._per_client:
            return False
        return len(self._all) < self._overall

    def failed(self, client: str) -> None:
        now = self._clock()
        self._all.append(now)
        failures = self._clients.pop(client, None) or deque(maxlen=self._per_client)
        failures.append(now)
        self._clients[client] = failures
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)


def _prune(times: deque[float], since: float) -> None:
    while times and times[0] < since:
        times.popleft()
