"""GPU metrics through NVML: one backend read per cycle, turned into samples by the family table."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.collectors import activity, gpu_presence
from agent.collectors.gpu_metrics import FAMILIES, INFO, UP
from agent.collectors.gpu_presence import Responsiveness, gpu_ids
from agent.collectors.health import CHECK_FAILED, HEALTHY, XID_ERRORS, HealthChecker, HealthOptions
from agent.collectors.jobs import JobAccounting
from agent.collectors.kernel_log import SPECS as KERNEL_LOG_SPECS
from agent.collectors.kernel_log import KernelLog
from agent.collectors.power import NODE_POWER
from agent.hw import GpuReading, GpuSnapshot, NvmlStatus
from agent.hw.nvml_backend import NvmlBackend
from agent.hw.xid_catalogue import advice
from agent.metrics import MetricSpec, Sample

# A GPU that NVML lists but whose read failed: a failed part of the collector (`gpu/<index>`).
READ_FAILURES = frozenset({"hung", "error", "lost"})

NVML_UP = MetricSpec("suanli_nvml_up", "gauge", "1 when NVML is initialised and usable, else 0.")
NVML_INFO = MetricSpec(
    "suanli_nvml_info",
    "gauge",
    "NVML and driver versions (value 1).",
    ("driver_version", "nvml_version", "cuda_driver_version"),
)
NVML_ERRORS = MetricSpec(
    "suanli_nvml_errors_total",
    "counter",
    "NVML calls that failed, by function and error (NOT_SUPPORTED is not an error).",
    ("function", "error"),
)


@dataclass(frozen=True)
class GpuOptions:
    detail: bool = False
    health: HealthOptions = field(default_factory=HealthOptions)


class GpuCollector:
    """Exports every GPU family of the metric contract from an `NvmlBackend`."""

    name = "gpu"

    def __init__(
        self,
        backend: NvmlBackend,
        options: GpuOptions | None = None,
        clock: Callable[[], float] = time.time,
        jobs: JobAccounting | None = None,
        kernel_log: KernelLog | None = None,
    ) -> None:
        self.backend = backend
        self.options = options or GpuOptions()
        self.jobs = jobs
        self.kernel_log = kernel_log
        self.health = HealthChecker(self.options.health, clock)
        self.responsiveness = Responsiveness(clock)
        self.last: GpuSnapshot | None = None
        self.failed_parts: list[str] = []  # GPUs whose read failed this cycle

    def specs(self) -> Sequence[MetricSpec]:
        families = [f.spec for f in FAMILIES if self.options.detail or not f.spec.detail]
        return [
            NVML_UP,
            NVML_INFO,
            NVML_ERRORS,
            INFO,
            UP,
            HEALTHY,
            CHECK_FAILED,
            XID_ERRORS,
            *families,
            *activity.SPECS,
            *gpu_presence.SPECS,
            *(KERNEL_LOG_SPECS if self.kernel_log is not None else ()),
        ]

    def collect(self) -> list[Sample]:
        snapshot = self.backend.read()
        self.last = snapshot
        self.failed_parts = [
            gpu_ids(r.device)[0] for r in snapshot.readings if r.down_reason in READ_FAILURES
        ]
        samples = _nvml_samples(snapshot)
        samples += gpu_presence.inventory_samples(snapshot.inventory)
        for reading in snapshot.readings:
            samples.extend(self._gpu_samples(reading, snapshot))
        watts = [r.power_watts for r in snapshot.readings if r.up and r.power_watts is not None]
        if watts:
            samples.append(Sample(NODE_POWER, ("gpu",), sum(watts)))
        if self.jobs is not None:
            samples += self.jobs.samples(snapshot)
        if self.kernel_log is not None:
            samples += self.kernel_log.samples()
        return samples

    def _gpu_samples(self, reading: GpuReading, snapshot: GpuSnapshot) -> list[Sample]:
        ids = gpu_ids(reading.device)
        samples = [
            Sample(UP, ids, 1.0 if reading.up else 0.0),
            _info(reading, snapshot.status, ids),
        ]
        samples += self._health_samples(reading, snapshot, ids)
        samples += self.responsiveness.samples(reading, ids)
        if not reading.up:
            return samples
        detail = self.options.detail
        samples += activity.gpu_samples(reading, ids, detail)
        samples += gpu_presence.fabric_samples(reading, ids)
        for family in FAMILIES:
            if family.spec.detail and not detail:
                continue
            pairs = list(family.values(reading))
            if detail and family.detail_values is not None:
                pairs.extend(family.detail_values(reading))
            samples.extend(
                Sample(family.spec, (*ids, *extra), value)
                for extra, value in pairs
                if value is not None
            )
        return samples

    def _health_samples(
        self, reading: GpuReading, snapshot: GpuSnapshot, ids: tuple[str, str]
    ) -> list[Sample]:
        verdicts = self.health.verdicts(reading, snapshot.xid)
        samples = [Sample(HEALTHY, ids, 0.0 if any(verdicts.values()) else 1.0)]
        samples += [Sample(CHECK_FAILED, (*ids, c), float(f)) for c, f in verdicts.items()]
        codes = snapshot.xid.counts.get(reading.device.xid_key, {})
        samples += [
            Sample(XID_ERRORS, (*ids, str(code), advice(code).action), float(count))
            for code, count in sorted(codes.items())
        ]
        return samples

    def close(self) -> None:
        if self.kernel_log is not None:
            self.kernel_log.close()
        self.backend.close()


def _nvml_samples(snapshot: GpuSnapshot) -> list[Sample]:
    status = snapshot.status
    samples = [Sample(NVML_UP, (), 1.0 if status.up else 0.0)]
    if status.up:
        versions = (status.driver_version, status.nvml_version, status.cuda_driver_version)
        samples.append(Sample(NVML_INFO, tuple(v or "" for v in versions), 1.0))
    for (function, error), count in sorted(snapshot.errors.items()):
        samples.append(Sample(NVML_ERRORS, (function, error), float(count)))
    return samples


def _info(reading: GpuReading, status: NvmlStatus, ids: tuple[str, str]) -> Sample:
    d = reading.device
    labels = (
        d.model,
        d.serial or "",
        d.pci_bus_id,
        status.driver_version or "",
        d.vbios_version or "",
        status.cuda_driver_version or "",
        d.architecture or "",
        d.compute_mode or "",
        d.mig_mode,
    )
    return Sample(INFO, (*ids, *labels), 1.0)
