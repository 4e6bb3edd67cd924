"""NVSwitch SXid errors read from the kernel log, counted per switch, link and SXid.

Not a collector of its own: the kernel-log watcher calls `SxidCounter.count` for every SXid
event, and the collector that owns the watcher exports `samples()` and `KMSG_UP`.
"""

from __future__ import annotations

import threading
from collections import Counter

from agent.hw.kernel_xid import SxidLine
from agent.metrics import MetricSpec, Sample

SXID_ERRORS = MetricSpec(
    "suanli_nvswitch_sxid_errors_total",
    "counter",
    "NVSwitch SXid errors from the kernel log, by switch device, link (empty when the line names "
    "none) and SXid code; one count per fault.",
    ("switch", "link", "sxid"),
)
KMSG_UP = MetricSpec(
    "suanli_kmsg_up",
    "gauge",
    "1 while the kernel log is being read for XID and SXid lines, 0 while it cannot be "
    "(missing, or not readable by the agent's user).",
)


class SxidCounter:
    """SXid counts since the agent started; safe to count from one thread and read from another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def count(self, line: SxidLine) -> None:
        link = "" if line.link is None else str(line.link)
        with self._lock:
            self._counts[(line.switch, link, str(line.sxid))] += 1

    def samples(self) -> list[Sample]:
        with self._lock:
            counts = sorted(self._counts.items())
        return [Sample(SXID_ERRORS, labels, float(value)) for labels, value in counts]


def kmsg_up_sample(up: bool) -> Sample:
    return Sample(KMSG_UP, (), 1.0 if up else 0.0)
