"""Basic auth for the HTTP loop without blocking it: cached credentials pass at once, others are
checked by bcrypt in two worker threads, with failures throttled (agent.auth_throttle).
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from agent.auth_throttle import Throttle
from agent.basicauth import BasicAuth, parse_basic

log = logging.getLogger(__name__)

WORKERS = 2
PENDING = 8  # checks queued or running; more are answered 429 at once

PASS, DENY, THROTTLED, CHECKING = "pass", "deny", "throttled", "checking"


class AuthGate:
    """Used from the loop's thread; `wake` is called from a worker when a check is done."""

    def __init__(self, auth: BasicAuth, wake: Callable[[], None]) -> None:
        self.auth = auth
        self.throttle = Throttle()
        self._wake = wake
        self._pool: ThreadPoolExecutor | None = None
        self._pending = 0
        self._checking: Counter[str] = Counter()  # checks under way, per client address
        self.done: deque[tuple[Any, bool]] = deque()  # (token, verified), filled by workers

    def admit(self, header: str | None, peer: str, token: Any) -> str:
        """PASS, DENY, THROTTLED, or CHECKING: the outcome arrives later in `done` with `token`."""
        if self.auth.cached(header):
            return PASS
        if parse_basic(header) is None:
            return DENY  # nothing to check: no bcrypt, no throttle
        if self._pending >= PENDING or not self.throttle.allowed(peer, self._checking[peer]):
            return THROTTLED
        if self._pool is None:
            self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="http-auth")
        self._pending += 1
        self._checking[peer] += 1
        future = self._pool.submit(self.auth.verify, header)
        future.add_done_callback(lambda f: self._finished(f, token))
        return CHECKING

    def _finished(self, future: Future[bool], token: Any) -> None:
        try:
            verified = bool(future.result())
        except Exception:  # a check that cannot run denies
            log.debug("basic auth check failed", exc_info=True)
            verified = False
        self.done.append((token, verified))
        self._wake()

    def settle(self, peer: str, verified: bool) -> None:
        """Account for one finished check (in the loop's thread)."""
        self._pending -= 1
        self._checking[peer] -= 1
        if not self._checking[peer]:
            del self._checking[peer]
        if not verified:
            self.throttle.failed(peer)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
