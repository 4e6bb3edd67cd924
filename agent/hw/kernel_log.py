"""A thread that reads the kernel log and hands XID and SXid events to callbacks.

Each record is handled once: the cursor skips what an earlier run (or an earlier follower of
this run) already handled, and is advanced before the callbacks run, so a callback that fails
never makes an event count twice. A follower that cannot open or read the log is replaced by a
new one after a backoff (1 s doubling to 30 s); each distinct error is logged once, and
`status()` says whether the log is being read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from agent.hw.kernel_xid import SxidLine, XidLine, parse_sxid, parse_xid
from agent.hw.kmsg import KmsgCursor, KmsgFollower, KmsgRecord

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


class KernelLogWatcher:
    """Polls a kernel-log follower every `poll_interval` seconds on a daemon thread."""

    def __init__(
        self,
        follower_factory: Callable[[], KmsgFollower],
        cursor: KmsgCursor,
        on_xid: Callable[[XidLine, KmsgRecord], object],
        on_sxid: Callable[[SxidLine, KmsgRecord], object],
        poll_interval: float = 0.2,
    ) -> None:
        self._factory = follower_factory
        self.cursor = cursor
        self._on_xid = on_xid
        self._on_sxid = on_sxid
        self.poll_interval = poll_interval
        self._follower: KmsgFollower | None = None
        self._lock = threading.Lock()  # guards the status fields and the follower's lifetime
        self._error: str | None = None
        self._lost_before = 0  # records lost by followers already closed
        self._logged: set[str] = set()
        self._backoff = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop = threading.Event()  # a thread that outlived stop() keeps its own, set
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="kernel-log", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (within `timeout`), close the follower and save the cursor."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            self._drop_follower()
        self.cursor.close()

    def status(self) -> tuple[bool, str | None, int]:
        """(the log is being read, the last error or None, records the kernel overwrote)."""
        with self._lock:
            follower = self._follower
            lost = self._lost_before + (0 if follower is None else follower.lost)
            return follower is not None and self._error is None, self._error, lost

    def drain_once(self) -> int:
        """Handle everything the log holds now; the number of new records. Opening failures are
        reported by `status()`, not raised."""
        handled = 0
        while (batch := self._poll()) is not None:
            read, new = batch
            handled += new
            if read == 0:
                break
        self.cursor.save()
        return handled

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            batch = self._poll()
            self.cursor.save()
            if batch is None:
                self._backoff = min(MAX_BACKOFF, max(1.0, self._backoff * 2))
                stop.wait(self._backoff)
            elif batch[0] == 0:
                stop.wait(self.poll_interval)

    def _poll(self) -> tuple[int, int] | None:
        """One poll: (records read, new records), or None when the log cannot be read."""
        with self._lock:
            try:
                if self._follower is None:
                    follower = self._factory()
                    follower.open()
                    self._follower = follower
                records = self._follower.poll()
            except OSError as err:  # KmsgError, or a factory's own
                self._failed(str(err))
                return None
            if self._error is not None:
                log.info("reading the kernel log again (%s)", self._follower.path)
            self._error, self._backoff = None, 0.0
        return len(records), sum(self._handle(record) for record in records)

    def _failed(self, error: str) -> None:
        self._drop_follower()
        self._error = error
        if error not in self._logged:
            self._logged.add(error)
            log.warning("kernel log: %s; XID and SXid lines are not read until it can be", error)

    def _drop_follower(self) -> None:
        if self._follower is not None:
            self._lost_before += self._follower.lost
            self._follower.close()
            self._follower = None

    def _handle(self, record: KmsgRecord) -> int:
        if not self.cursor.is_new(record):
            return 0
        self.cursor.advance(record)
        xid = parse_xid(record.text)
        sxid = None if xid is not None else parse_sxid(record.text)
        try:
            if xid is not None:
                self._on_xid(xid, record)
            elif sxid is not None:
                self._on_sxid(sxid, record)
        except Exception as err:  # a callback's bug must not stop the log being read
            self._log_once(f"callback-{type(err).__name__}", f"kernel-log callback failed: {err!r}")
        return 1

    def _log_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.exception("%s", message)
