"""Health verdicts per GPU, one series per check, and XID counts: what operators alert and drain on.

Every check of the contract is always exported for every known GPU (0 or 1), so an alert on
`suanli_gpu_health_check_failed == 1` never misses a GPU because a series did not exist yet.
A check whose input NVML does not provide on a board (no NVLink, no row remapper) reads 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.collectors.base import Context, ViewKind
from agent.collectors.gpu import GpuOptions
from agent.collectors.gpu_presence import fabric_problem, gpu_ids
from agent.hw import GpuReading, GpuSnapshot, XidRecord
from agent.hw.xid_catalogue import advice, needs_operator
from agent.metrics import MetricSpec, Sample

if TYPE_CHECKING:
    from agent.hw.nvml_backend import NvmlBackend

CHECKS = (
    "lost",
    "xid_critical",
    "uncorrectable_ecc",
    "row_remap_failure",
    "row_remap_pending",
    "pcie_link_degraded",
    "thermal",
    "nvlink_down",
    "recovery_action",
    "fabric",
)
# Present only for a GPU that is expected but not listed by NVML (always 1 then).
MISSING_CHECK = "missing"

HEALTHY = MetricSpec(
    "suanli_gpu_healthy",
    "gauge",
    "1 when every health check passes, 0 when any fails.",
    ("gpu", "uuid"),
)
CHECK_FAILED = MetricSpec(
    "suanli_gpu_health_check_failed",
    "gauge",
    "1 while this health check fails.",
    ("gpu", "uuid", "check"),
)
XID_ERRORS = MetricSpec(
    "suanli_gpu_xid_errors_total",
    "counter",
    "XIDs reported by the driver (NVML events and kernel log, each fault once), by XID code, with "
    "the action NVIDIA's XID catalogue recommends.",
    ("gpu", "uuid", "xid", "action"),
)


@dataclass(frozen=True)
class HealthOptions:
    xid_window_seconds: float = 3600.0
    critical_xids: Collection[int] = ()  # empty: those whose catalogue action needs an operator


class HealthChecker:
    """Computes the verdicts; remembers each GPU's first ECC count when no volatile one exists."""

    def __init__(self, options: HealthOptions, clock: Callable[[], float]) -> None:
        self.options = options
        self._clock = clock
        self._ecc_baseline: dict[str, float] = {}

    def verdicts(self, reading: GpuReading, xid: XidRecord) -> dict[str, bool]:
        if not reading.up:
            verdicts = {
                check: check in ("lost", "xid_critical") and self._check(check, reading, xid)
                for check in CHECKS
            }
            if reading.down_reason == MISSING_CHECK:
                verdicts[MISSING_CHECK] = True
            return verdicts
        return {check: self._check(check, reading, xid) for check in CHECKS}

    def _check(self, check: str, r: GpuReading, xid: XidRecord) -> bool:
        if check == "lost":
            return not r.up
        if check == "xid_critical":
            return self._recent_critical_xid(r.device.xid_key, xid)
        if check == "uncorrectable_ecc":
            return self._uncorrectable_ecc(r)
        if check == "pcie_link_degraded":
            return _pcie_degraded(r)
        return _STATE_CHECKS[check](r)

    def _recent_critical_xid(self, key: Hashable, xid: XidRecord) -> bool:
        since = self._clock() - self.options.xid_window_seconds
        return any(
            gpu == key and self.critical(code) and seen >= since
            for (gpu, code), seen in xid.last_seen.items()
        )

    def critical(self, code: int) -> bool:
        """The configured list's verdict, else the catalogue's: its action needs an operator."""
        if self.options.critical_xids:
            return code in self.options.critical_xids
        return needs_operator(advice(code).action)

    def _uncorrectable_ecc(self, r: GpuReading) -> bool:
        if r.ecc_volatile_uncorrected is not None:
            return r.ecc_volatile_uncorrected > 0
        lifetime = r.ecc_errors.get("uncorrected")
        if lifetime is None:
            return False
        baseline = self._ecc_baseline.setdefault(r.device.uuid, lifetime)
        return lifetime > baseline


def _pcie_degraded(r: GpuReading) -> bool:
    """Link below its maximum while the GPU works (idle links step down to save power)."""
    busy = (r.utilization_ratio or 0.0) > 0.0
    d = r.device
    slower = (
        r.pcie_link_generation is not None
        and d.pcie_max_generation is not None
        and r.pcie_link_generation < d.pcie_max_generation
    )
    narrower = (
        r.pcie_link_width is not None
        and d.pcie_max_width is not None
        and r.pcie_link_width < d.pcie_max_width
    )
    return busy and (slower or narrower)


_STATE_CHECKS: dict[str, Callable[[GpuReading], bool]] = {
    "row_remap_failure": lambda r: r.row_remap_state.get("failed", 0.0) > 0,
    "row_remap_pending": lambda r: r.row_remap_state.get("pending", 0.0) > 0,
    "thermal": lambda r: (
        r.clock_event_reasons.get("hw_thermal", False)
        or r.clock_event_reasons.get("sw_thermal", False)
    ),
    "nvlink_down": lambda r: any(not up for up in r.nvlink_up.values()),
    "recovery_action": lambda r: (r.recovery_action or 0) > 0,
    "fabric": fabric_problem,
}


class GpuHealth:
    """The health view: every check's verdict per GPU, and XID counts by code and action."""

    name = "health"

    def __init__(self, options: HealthOptions, clock: Callable[[], float] = time.time) -> None:
        self.checker = HealthChecker(options, clock)

    def specs(self) -> Sequence[MetricSpec]:
        return [HEALTHY, CHECK_FAILED, XID_ERRORS]

    def samples(self, snapshot: GpuSnapshot) -> list[Sample]:
        samples: list[Sample] = []
        for reading in snapshot.readings:
            ids = gpu_ids(reading.device)
            verdicts = self.checker.verdicts(reading, snapshot.xid)
            samples.append(Sample(HEALTHY, ids, 0.0 if any(verdicts.values()) else 1.0))
            samples += [Sample(CHECK_FAILED, (*ids, c), float(f)) for c, f in verdicts.items()]
            codes = snapshot.xid.counts.get(reading.device.xid_key, {})
            samples += [
                Sample(XID_ERRORS, (*ids, str(code), advice(code).action), float(count))
                for code, count in sorted(codes.items())
            ]
        return samples

    def close(self) -> None:
        pass


def build(options: GpuOptions, context: Context, backend: NvmlBackend) -> GpuHealth:
    return GpuHealth(HealthOptions(options.xid_window, frozenset(options.critical_xids)))


VIEW = ViewKind(
    "health",
    "gpu",
    build,
    "GPU health and XIDs (collector `health`; options under `collectors.gpu`)",
    (HEALTHY, CHECK_FAILED, XID_ERRORS),
)
