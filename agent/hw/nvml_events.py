"""XID events: a listener thread on NVML's event API, counting every critical XID per GPU.

Events queue in the driver between waits, so none is missed between scrapes; the thread waits
at most `wait_ms` at a time so that it stops promptly, and it is started anew (with a new event
set) after every NVML initialisation.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from agent.hw import XidRecord
from agent.hw.nvml import XID_EVENT, GpuGone, NVMLError, NvmlGateway, NvmlUnavailable

log = logging.getLogger(__name__)


class XidListener:
    """Counts XIDs per GPU index. Counts survive NVML re-initialisation (they are counters)."""

    def __init__(
        self, gw: NvmlGateway, *, clock: Callable[[], float] = time.time, wait_ms: int = 500
    ) -> None:
        self.gw = gw
        self._clock = clock
        self._wait_ms = wait_ms
        self._lock = threading.Lock()
        self._counts: defaultdict[int, defaultdict[int, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self._last_seen: dict[tuple[int, int], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.registered: set[int] = set()

    def record(self) -> XidRecord:
        with self._lock:
            counts = {gpu: dict(codes) for gpu, codes in self._counts.items()}
            return XidRecord(counts, dict(self._last_seen))

    def start(self, handles: Mapping[int, Any]) -> None:
        """Register every GPU that supports XID events and start listening."""
        self.stop()
        event_set = self._create_set()
        if event_set is None:
            return
        self.registered = {i for i, h in handles.items() if self._register(event_set, i, h)}
        if not self.registered:
            self._free(event_set)
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._listen, args=(event_set, self._stop), name="xid-events", daemon=True
        )
        self._thread.start()
        log.info("listening for XID events on GPU(s) %s", sorted(self.registered))

    def stop(self, timeout: float = 1.5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _create_set(self) -> Any:
        try:
            return self.gw.call("nvmlEventSetCreate", "events")
        except (NVMLError, NvmlUnavailable) as err:
            self.gw.log_once("events", f"XID events unavailable: {err}")
            return None

    def _register(self, event_set: Any, index: int, handle: Any) -> bool:
        key = f"events-{index}"
        try:
            supported = self.gw.call("nvmlDeviceGetSupportedEventTypes", key, handle)
            if supported is None or not int(supported) & XID_EVENT:
                self.gw.log_once(key, f"GPU {index} does not report XID events")
                return False
            self.gw.call("nvmlDeviceRegisterEvents", key, handle, XID_EVENT, event_set)
        except (NVMLError, GpuGone, NvmlUnavailable) as err:
            self.gw.log_once(key, f"GPU {index}: cannot register for XID events: {err}")
            return False
        return not self.gw.is_unsupported("nvmlDeviceRegisterEvents", key)

    def _listen(self, event_set: Any, stop: threading.Event) -> None:
        nv = self.gw.nv
        try:
            while not stop.is_set():
                try:
                    event = nv.nvmlEventSetWait_v2(event_set, self._wait_ms)
                except NVMLError as err:
                    if getattr(err, "value", None) == nv.NVML_ERROR_TIMEOUT:
                        continue
                    if not self._survivable(err):
                        return
                    stop.wait(self._wait_ms / 1000)
                    continue
                self._count(event)
        finally:
            self._free(event_set)

    def _survivable(self, err: Any) -> bool:
        """Count a failed wait; False when NVML itself is gone (the backend restarts us)."""
        nv = self.gw.nv
        self.gw.count_error("nvmlEventSetWait_v2", type(err).__name__.removeprefix("NVMLError_"))
        if getattr(err, "value", None) in (
            nv.NVML_ERROR_UNINITIALIZED,
            nv.NVML_ERROR_DRIVER_NOT_LOADED,
        ):
            return False
        self.gw.log_once("events-wait", f"waiting for XID events failed: {err}")
        return True

    def _count(self, event: Any) -> None:
        if not int(event.eventType) & XID_EVENT:
            return
        try:
            index = int(self.gw.nv.nvmlDeviceGetIndex(event.device))
        except NVMLError as err:
            self.gw.log_once("events-index", f"XID event from an unknown GPU: {err}")
            return
        code = int(event.eventData)
        with self._lock:
            self._counts[index][code] += 1
            self._last_seen[(index, code)] = self._clock()
        log.warning("XID %d on GPU %d", code, index)

    def _free(self, event_set: Any) -> None:
        with contextlib.suppress(NVMLError):  # already gone with an NVML shutdown
            self.gw.nv.nvmlEventSetFree(event_set)
