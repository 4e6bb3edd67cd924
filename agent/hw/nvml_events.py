"""XID events from NVML's event API, filed under the GPU whose handle was registered.

One event set per NVML initialisation. Each GPU is registered by its own reader when it is
first read (so a GPU whose calls hang delays nobody's registration), and the listener
remembers which device each registered handle belongs to. An event names its GPU only by that
handle: after XID 79 every query on the handle (its index and `GetUUID` included)
answers GPU_IS_LOST, so the listener never asks the handle who it is. Events queue in the
driver between waits, so none is missed between scrapes. A thread waits at most `wait_ms` at a
time, so that it stops promptly; `threaded=False` (the fleet simulator, thousands of nodes in
a few threads) drains the set at each cycle instead.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from agent.hw import GpuDevice
from agent.hw.nvml import XID_EVENT, NVMLError, NvmlGateway
from agent.hw.nvml_errors import GpuGone, NvmlUnavailable
from agent.hw.xid_ledger import XidLedger, worth_logging

log = logging.getLogger(__name__)


class XidListener:
    """Feeds an `XidLedger`. Registration is safe from any reader thread."""

    def __init__(
        self,
        gw: NvmlGateway,
        ledger: XidLedger,
        *,
        wait_ms: int = 500,
        threaded: bool = True,
    ) -> None:
        self.gw = gw
        self.ledger = ledger
        self._wait_ms = wait_ms
        self._threaded = threaded
        self._lock = threading.Lock()
        self._set: Any = None
        self._devices: dict[object, GpuDevice] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def registered(self) -> set[int]:
        """NVML indexes of the GPUs registered for XID events."""
        return {device.index for device in list(self._devices.values())}

    def open(self) -> None:
        """A new event set (after every NVML initialisation), and its listener thread."""
        self.stop()
        try:
            event_set = self.gw.call("nvmlEventSetCreate", "events")
        except (NVMLError, NvmlUnavailable) as err:
            self.gw.log_once("events", f"XID events unavailable: {err}")
            return
        with self._lock:
            self._set, self._devices = event_set, {}
        if self._threaded:
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._listen, args=(event_set, self._stop), name="xid-events", daemon=True
            )
            self._thread.start()

    def register(self, handle: Any, device: GpuDevice) -> bool:
        """Register one GPU for XID events; True when its events will be counted."""
        event_set, key = self._set, f"events-{device.index}"
        if event_set is None:
            return False
        try:
            supported = self.gw.call("nvmlDeviceGetSupportedEventTypes", key, handle)
            if supported is None or not int(supported) & XID_EVENT:
                self.gw.log_once(key, f"GPU {device.index} does not report XID events")
                return False
            self.gw.call("nvmlDeviceRegisterEvents", key, handle, XID_EVENT, event_set)
        except (NVMLError, GpuGone, NvmlUnavailable) as err:
            self.gw.log_once(key, f"GPU {device.index}: cannot register for XID events: {err}")
            return False
        if self.gw.is_unsupported("nvmlDeviceRegisterEvents", key):
            return False
        self._devices[self.gw.handle_key(handle)] = device
        return True

    def stop(self, timeout: float = 1.5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            event_set, self._set = self._set, None
        if event_set is not None and not self._threaded:
            self._free(event_set)  # a listener thread frees its own set as it ends

    def drain(self) -> None:
        """Count every event queued now (the unthreaded mode's once-a-cycle poll)."""
        while self._set is not None and not self._threaded:
            event = self._wait(self._set, 0)
            if event is None:
                return
            self._count(event)

    def _listen(self, event_set: Any, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                event = self._wait(event_set, self._wait_ms)
                if event is not None:
                    self._count(event)
                elif self._set is not event_set:
                    return  # NVML went away: a new set comes with the next initialisation
        finally:
            self._free(event_set)

    def _wait(self, event_set: Any, timeout_ms: int) -> Any:
        """The next event, or None (timeout, or a failed wait, counted and paced)."""
        nv = self.gw.nv
        try:
            return nv.nvmlEventSetWait_v2(event_set, timeout_ms)
        except NVMLError as err:
            if getattr(err, "value", None) == nv.NVML_ERROR_TIMEOUT:
                return None
            self.gw.count_error(
                "nvmlEventSetWait_v2", type(err).__name__.removeprefix("NVMLError_")
            )
            if getattr(err, "value", None) in (
                nv.NVML_ERROR_UNINITIALIZED,
                nv.NVML_ERROR_DRIVER_NOT_LOADED,
            ):
                with self._lock:
                    if self._set is event_set:
                        self._set = None
                return None
            self.gw.log_once("events-wait", f"waiting for XID events failed: {err}")
            self._stop.wait(self._wait_ms / 1000)
            return None

    def _count(self, event: Any) -> None:
        if not int(event.eventType) & XID_EVENT:
            return
        device = self._devices.get(self.gw.handle_key(event.device))
        code = int(event.eventData)
        if device is None:
            self.gw.log_once("events-unknown", f"XID {code} from a GPU that was not registered")
            return
        count = self.ledger.sighting(device.xid_key, code, "nvml")
        if worth_logging(count):
            log.warning(
                "XID %d on GPU %d (%s): %d so far", code, device.index, device.pci_bus_id, count
            )

    def _free(self, event_set: Any) -> None:
        with contextlib.suppress(NVMLError):  # already gone with an NVML shutdown
            self.gw.nv.nvmlEventSetFree(event_set)
