"""A long-lived daemon thread that runs one job at a time, so a caller can wait with a deadline.

A job that hangs (an NVML call on a failing GPU) keeps only its own worker busy: the caller
stops waiting at its deadline, reports the job as late, and submits nothing more to that worker
until the job returns. Threads are kept for the agent's life rather than started per job, so
the allocator's per-thread memory does not creep up over hours.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Worker(Generic[T]):
    """Runs `job()` in its own thread on each `submit`; `inline=True` runs it in the caller's."""

    def __init__(
        self,
        name: str,
        job: Callable[[], T],
        *,
        inline: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._monotonic = monotonic
        self.started = 0.0
        self.finished = threading.Event()
        self.finished.set()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.duration = 0.0
        self._job = job
        self._inline = inline
        self._request = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return not self.finished.is_set()

    def submit(self) -> None:
        """Start the job (unless it is still running from before)."""
        if self.busy:
            return
        self.started = self._monotonic()
        self.finished.clear()
        if self._inline:
            self._run()
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        self._request.set()

    def wait(self, deadline: float) -> bool:
        """Wait until the job finished or the monotonic clock reaches `deadline`."""
        return self.finished.wait(max(0.0, deadline - self._monotonic()))

    def close(self) -> None:
        """End the thread now, or when a job still running returns."""
        self._closing = True
        self._request.set()

    def _loop(self) -> None:
        while True:
            self._request.wait()
            self._request.clear()
            if self._closing:
                return
            self._run()

    def _run(self) -> None:
        try:
            self.result, self.error = self._job(), None
        except Exception as err:
            self.result, self.error = None, err
        finally:
            self.duration = self._monotonic() - self.started
            self.finished.set()
