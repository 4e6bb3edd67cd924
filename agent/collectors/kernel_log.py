"""The kernel log's part of GPU health: XID lines feed the same ledger as NVML's XID events
(so a fault both report is counted once, and one the event API missed is counted at all), and
NVSwitch SXid lines are counted per switch, link and code.

A record's wall time, for the `xid_critical` window: on the real `/dev/kmsg` its timestamp is
microseconds of the monotonic clock since boot, so an XID from before the agent started is
counted with the time it happened, not the time it was read; in a followed regular file (tests,
replays) timestamps are not this boot's and the time it was read is used.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.collectors.base import Context, ViewKind
from agent.collectors.nvswitch import KMSG_UP, SXID_ERRORS, SxidCounter, kmsg_up_sample
from agent.hw import GpuSnapshot
from agent.hw.kernel_log import KernelLogWatcher
from agent.hw.kernel_xid import SxidLine, XidLine
from agent.hw.kmsg import KmsgCursor, KmsgFollower, KmsgRecord
from agent.hw.xid_ledger import XidLedger, worth_logging
from agent.metrics import MetricSpec, Sample
from agent.options import READABLE, boolean, option, path_option, string

if TYPE_CHECKING:
    from agent.hw.nvml_backend import NvmlBackend

log = logging.getLogger(__name__)

SPECS: tuple[MetricSpec, ...] = (KMSG_UP, SXID_ERRORS)
FollowerFactory = Callable[[], KmsgFollower]


def _is_device(path: str) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


@dataclass(frozen=True)
class KmsgOptions:
    enabled: bool = option(True, boolean)
    path: str = path_option("/dev/kmsg", READABLE)  # or a regular file, followed like `tail -f`
    state_file: str = option("/var/lib/suanli-agent/kmsg-cursor.json", string)  # "": none


class KernelLog:
    """The kernel-log view (`collector="kmsg"`): read by a thread of its own, reported with
    the GPU collector's cycle."""

    name = "kmsg"

    def __init__(
        self,
        path: str,
        state_file: str,
        ledger: XidLedger,
        *,
        follower: FollowerFactory | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        self.path = path
        self.ledger = ledger
        self.sxids = SxidCounter()
        self._device = _is_device(path)
        cursor = KmsgCursor(state_file or None)
        factory = follower or (lambda: KmsgFollower(path))
        self.watcher = KernelLogWatcher(
            factory, cursor, self._xid, self._sxid, poll_interval=poll_interval
        )

    def start(self) -> None:
        self.watcher.start()

    def _xid(self, line: XidLine, record: KmsgRecord) -> None:
        count = self.ledger.sighting(line.pci, line.xid, "kmsg", at=self._when(record))
        if worth_logging(count):
            where = "PCI {:04x}:{:02x}:{:02x}".format(*line.pci)
            log.warning("XID %d in the kernel log for %s: %d so far", line.xid, where, count)

    def _sxid(self, line: SxidLine, record: KmsgRecord) -> None:
        self.sxids.count(line)

    def _when(self, record: KmsgRecord) -> float | None:
        if not self._device or record.ts_usec is None:
            return None
        return time.time() - (time.monotonic() - record.ts_usec / 1e6)

    def specs(self) -> Sequence[MetricSpec]:
        return SPECS

    def samples(self, snapshot: GpuSnapshot | None = None) -> list[Sample]:
        up, _, _ = self.watcher.status()
        return [kmsg_up_sample(up), *self.sxids.samples()]

    def close(self) -> None:
        self.watcher.stop()


def build(options: KmsgOptions, context: Context, backend: NvmlBackend) -> KernelLog:
    """The reader, started unless `inline`: the simulator's log while the configured path is
    the default one, else that file (a log to replay, or the real /dev/kmsg)."""
    parts = context.parts
    if parts.kernel_log is None or options.path != KmsgOptions().path:
        reader = KernelLog(options.path, options.state_file, backend.ledger)
    else:
        reader = parts.kernel_log(backend.ledger)
    if not parts.inline:
        reader.start()
    return reader


VIEW = ViewKind(
    "kmsg",
    "kmsg",
    build,
    "Kernel log: XIDs and NVSwitch SXids (collector `kmsg`, `collectors.kmsg`)",
    SPECS,
)
