"""Which job holds which GPU, kept fresh off the sampling path.

The kubelet (`agent.hw.pod_resources`) and Slurm's device cgroups (`agent.hw.slurm_devices`) are
read on a thread of their own every `interval_s`, each kubelet call with its own deadline. The
sampler only takes the last map (`holders()`), so a missing, refusing or hanging kubelet never
delays a GPU reading. A source that fails gives no holders (the jobs view falls back to the
processes) and its state says why, until a later read succeeds. A fleet of simulated nodes in
one process (`inline`) reads in the sampling thread instead, when the interval has passed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agent.hw.cgroups import JobRef
from agent.hw.pod_resources import KubeletError, PodResourcesClient, pod_uids
from agent.hw.slurm_devices import SlurmCgroupDevices, SlurmDevicesUnavailable

log = logging.getLogger(__name__)

KUBELET = "kubelet"
SLURM = "slurm_cgroup"


@dataclass(frozen=True)
class SourceState:
    up: bool
    reason: str  # "ok", or why the source gives nothing


@dataclass(frozen=True)
class _Reading:
    holders: Mapping[str, tuple[JobRef, ...]]
    states: Mapping[str, SourceState]
    allocatable: frozenset[str] | None


_EMPTY = _Reading({}, {}, None)


class AllocationRefresher:
    """GPU or MIG UUID (or device-plugin index) -> the jobs holding it, refreshed in background."""

    def __init__(
        self,
        kubelet: PodResourcesClient | None,
        slurm: SlurmCgroupDevices | None,
        interval_s: float = 10.0,
        pod_log_root: str = "",
        inline: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kubelet = kubelet
        self.slurm = slurm
        self.interval_s = interval_s
        self.pod_log_root = pod_log_root  # the kubelet's /var/log/pods: pod names -> UIDs
        self._reading = _EMPTY
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged: dict[str, str] = {}
        self._inline = inline
        self._clock = clock
        self._due = 0.0

    def start(self) -> None:
        if (
            not self._inline
            and self._thread is None
            and (self.kubelet is not None or self.slurm is not None)
        ):
            self._thread = threading.Thread(
                target=self._run, name="suanli-allocations", daemon=True
            )
            self._thread.start()

    def holders(self) -> Mapping[str, tuple[JobRef, ...]]:
        if self._inline and self._clock() >= self._due:
            self._due = self._clock() + self.interval_s
            self.refresh()
        return self._reading.holders

    def states(self) -> Mapping[str, SourceState]:
        """Each source that applies to this node; a source absent here was not configured."""
        return self._reading.states

    def allocatable(self) -> frozenset[str] | None:
        """GPU device ids the kubelet can give to pods; None when not known."""
        return self._reading.allocatable

    def refresh(self) -> None:
        """Read every source once (the thread's work; tests call it directly)."""
        holders: dict[str, tuple[JobRef, ...]] = {}
        states: dict[str, SourceState] = {}
        allocatable = None
        if self.kubelet is not None:
            try:
                uids = pod_uids(self.pod_log_root) if self.pod_log_root else {}
                answer = self.kubelet.read(uids)
                _merge(holders, answer.holders)
                allocatable = answer.allocatable
                states[KUBELET] = SourceState(True, "ok")
            except KubeletError as err:
                states[KUBELET] = self._failed(KUBELET, err.reason, str(err))
        if self.slurm is not None:
            try:
                _merge(holders, self.slurm.read())
                states[SLURM] = SourceState(True, "ok")
            except SlurmDevicesUnavailable as err:
                if err.reason != "no_slurm":  # not a Slurm node: nothing to say
                    states[SLURM] = self._failed(SLURM, err.reason, str(err))
        self._reading = _Reading(holders, states, allocatable)
        for source, state in states.items():
            if state.up and self._logged.pop(source, None) is not None:
                log.info("job allocations from %s: read again", source)

    def _failed(self, source: str, reason: str, detail: str) -> SourceState:
        if self._logged.get(source) != reason and not self._stop.is_set():  # closing cancels
            self._logged[source] = reason
            log.warning("job allocations from %s unavailable (%s); using processes", source, detail)
        return SourceState(False, reason)

    def _run(self) -> None:
        failed = ""
        while not self._stop.is_set():
            try:
                self.refresh()
                failed = ""
            except Exception as err:  # a bug here must not end the refreshing for good
                if repr(err) != failed:
                    log.exception("job allocations: refresh failed")
                failed = repr(err)
            self._stop.wait(self.interval_s)

    def close(self) -> None:
        """Stop refreshing; a kubelet call in flight is cancelled, not waited for."""
        self._stop.set()
        if self.kubelet is not None:
            self.kubelet.close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None


def _merge(into: dict[str, tuple[JobRef, ...]], more: Mapping[str, tuple[JobRef, ...]]) -> None:
    for device_id, refs in more.items():
        known = into.get(device_id, ())
        into[device_id] = known + tuple(r for r in refs if r not in known)
