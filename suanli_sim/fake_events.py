"""NVML events for the fake: event sets, registration and XID delivery.

Every `xid` fault (`count` identical events at time `at`) becomes pending on each event set that
registered nvmlEventTypeXidCriticalError for its GPU, once simulated time reaches `at`, provided
`at` is not before that registration (as in NVML, a set only sees events that happen after it
registered). Each event is delivered once per set, oldest first (ties: lower GPU index). Events
of a GPU that is lost are still delivered, carrying the same handle the agent registered: a real
GPU reports XID 79 as it falls off the bus, the driver's queue does not depend on the GPU
answering afterwards, and every query on that handle (nvmlDeviceGetIndex included) then answers
GPU_IS_LOST, so a listener must know the GPU by its handle, not by asking it.

A wait never holds the fake's global lock: it polls its set (every 50 ms of real time at most)
until an event is pending or `timeoutms` of real time has passed. An NVML shutdown (to refcount
0) ends every set: waits on it, even after a later nvmlInit, answer Uninitialized.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.fake_calls import FakeHandle, FakeNvmlBase, device, mig_device, system
from suanli_sim.fake_device import FakeGpu, fail
from suanli_sim.fake_mig_device import MigDevice
from suanli_sim.fake_scenario import Scenario

P = pynvml
XID = P.nvmlEventTypeXidCriticalError
NO_INSTANCE = 0xFFFFFFFF  # gpuInstanceId/computeInstanceId of an event not scoped to a MIG instance
POLL_S = 0.05
# Assumed (not captured): what nvmlDeviceGetSupportedEventTypes reports for datacenter GPUs
BASE_EVENTS = P.nvmlEventTypePState | P.nvmlEventTypeClock | XID
ECC_EVENTS = P.nvmlEventTypeSingleBitEccError | P.nvmlEventTypeDoubleBitEccError


@dataclass(frozen=True)
class FakeEventData:
    """What nvmlEventSetWait returns. pynvml returns a c_nvmlEventData_t, whose `device` field
    is a C pointer that cannot hold a FakeHandle; this has the same attribute names."""

    device: FakeHandle
    eventType: int
    eventData: int
    gpuInstanceId: int = NO_INSTANCE
    computeInstanceId: int = NO_INSTANCE


@dataclass(frozen=True)
class Burst:
    at: float
    code: int
    count: int


@dataclass
class Registration:
    since: float  # simulated time of the first registration
    mask: int
    delivered: int = 0  # events of the GPU (at or after `since`) delivered to this set


@dataclass
class EventSet:
    pointer: Any  # the c_nvmlEventSet_t handed out, kept alive so its address stays unique
    session: int
    gpus: dict[int, Registration] = field(default_factory=dict)


def timeline(scenario: Scenario) -> dict[int, list[Burst]]:
    """Per GPU index, its XID bursts in time order (scenario order among equal times)."""
    out: dict[int, list[Burst]] = {i: [] for i in range(len(scenario.gpus))}
    for fault in scenario.faults_of("xid"):
        for gpu in fault.gpus or range(len(scenario.gpus)):
            out[gpu].append(Burst(fault.at, fault.code, fault.count))
    for bursts in out.values():
        bursts.sort(key=lambda b: b.at)
    return out


class EventHub:
    """The event sets of one fake NVML, behind their own condition (not the global lock)."""

    def __init__(self, bursts: dict[int, list[Burst]], handles: Sequence[FakeHandle]) -> None:
        self.bursts = bursts
        self.handles = handles
        self.cond = threading.Condition()
        self.session = 0
        self.sets: dict[int, EventSet] = {}

    def create(self) -> Any:
        pointer = ctypes.pointer(P.struct_c_nvmlEventSet_t())
        with self.cond:
            self.sets[ctypes.addressof(pointer.contents)] = EventSet(pointer, self.session)
        return pointer

    @staticmethod
    def key(pointer: Any) -> int:
        try:
            return ctypes.addressof(pointer.contents)
        except (AttributeError, TypeError, ValueError):
            fail(P.NVML_ERROR_INVALID_ARGUMENT)

    def check(self, found: EventSet | None) -> EventSet:
        """InvalidArgument for a set never created or freed, Uninitialized for one from before
        an NVML shutdown."""
        if found is None:
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        if found.session != self.session:
            fail(P.NVML_ERROR_UNINITIALIZED)
        return found

    def free(self, pointer: Any) -> None:
        with self.cond:
            self.check(self.sets.pop(self.key(pointer), None))
            self.cond.notify_all()

    def register(self, pointer: Any, gpu: int, mask: int, t: float) -> None:
        with self.cond:
            found = self.check(self.sets.get(self.key(pointer)))
            registration = found.gpus.setdefault(gpu, Registration(t, 0))
            registration.mask |= mask
            self.cond.notify_all()

    def close(self) -> None:
        """NVML shut down: every existing set is void."""
        with self.cond:
            self.session += 1
            self.cond.notify_all()

    def due(self, t: float) -> tuple[int, int]:
        """(XID events due by simulated time `t` and not yet delivered, events delivered), over
        the live sets: what `--at` waits on before it samples."""
        pending = delivered = 0
        with self.cond:
            for found in self.sets.values():
                for gpu, reg in found.gpus.items() if found.session == self.session else ():
                    xid = reg.mask & XID
                    due = sum(b.count for b in self.bursts[gpu] if reg.since <= b.at <= t)
                    pending += max(0, due - reg.delivered) if xid else 0
                    delivered += reg.delivered
        return pending, delivered

    def _nth(self, gpu: int, since: float, n: int) -> Burst | None:
        for burst in self.bursts[gpu]:
            if burst.at < since:
                continue
            if n < burst.count:
                return burst
            n -= burst.count
        return None

    def next_event(self, found: EventSet, t: float) -> FakeEventData | None:
        """Deliver the oldest pending event of a set, if any. Call with `cond` held."""
        pending = []
        for gpu, reg in found.gpus.items():
            burst = self._nth(gpu, reg.since, reg.delivered) if reg.mask & XID else None
            if burst is not None and burst.at <= t:
                pending.append((burst.at, gpu, burst.code))
        if not pending:
            return None
        _, gpu, code = min(pending)
        found.gpus[gpu].delivered += 1
        return FakeEventData(self.handles[gpu], XID, code)

    def wait(self, pointer: Any, timeout_ms: int, now: Callable[[], float]) -> FakeEventData:
        deadline = time.monotonic() + max(0, int(timeout_ms)) / 1000.0
        with self.cond:
            while True:
                found = self.check(self.sets.get(self.key(pointer)))
                event = self.next_event(found, now())
                if event is not None:
                    return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    fail(P.NVML_ERROR_TIMEOUT)
                self.cond.wait(min(remaining, POLL_S))


class EventsApi(FakeNvmlBase):
    """The pynvml event functions of FakeNvml."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(scenario, clock, sleep)
        self.event_hub = EventHub(timeline(scenario), self.handles)

    @staticmethod
    def supported_events(gpu: FakeGpu) -> int:
        if gpu.faults["events_unsupported"]:
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        return int(BASE_EVENTS | (ECC_EVENTS if gpu.ecc else 0))

    @system
    def nvmlEventSetCreate(self) -> Any:
        return self.event_hub.create()

    @device
    def nvmlDeviceGetSupportedEventTypes(self, handle: FakeGpu) -> int:
        return self.supported_events(handle)

    @device
    def nvmlDeviceRegisterEvents(self, handle: FakeGpu, eventTypes: int, eventSet: Any) -> None:
        supported = self.supported_events(handle)
        if int(eventTypes) & ~supported:  # "some of requested event types" not supported
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        self.event_hub.register(eventSet, handle.index, int(eventTypes), self.now())

    def nvmlEventSetWait_v2(self, eventSet: Any, timeoutms: int) -> Any:
        self.enter("nvmlEventSetWait_v2")  # not under the global lock: waits block
        return self.event_hub.wait(eventSet, timeoutms, self.now)

    def nvmlEventSetWait(self, eventSet: Any, timeoutms: int) -> Any:
        self.enter("nvmlEventSetWait")
        return self.event_hub.wait(eventSet, timeoutms, self.now)

    @system
    def nvmlEventSetFree(self, eventSet: Any) -> None:
        self.event_hub.free(eventSet)

    @mig_device
    def nvmlDeviceGetIndex(self, handle: FakeGpu, mig: MigDevice | None) -> int:
        """The GPU's index; for a MIG device handle its index under its GPU (as NVML says: one
        nvmlDeviceGetMigDeviceHandleByIndex takes)."""
        return self.nvml_index(handle.index) if mig is None else mig.index
