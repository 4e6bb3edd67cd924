"""GPU metrics through NVML: one backend read per cycle, turned into samples by the family table."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.collectors import activity, delivered_metrics, gpu_presence
from agent.collectors.base import Context, GpuView, Kind, ViewOutcome
from agent.collectors.gpu_metrics import FAMILIES, INFO, UP
from agent.collectors.gpu_presence import Responsiveness, gpu_ids
from agent.collectors.power import NODE_POWER
from agent.hw import GpuReading, GpuSnapshot, NvmlStatus
from agent.hw.nvml import NvmlGateway
from agent.hw.nvml_backend import BackendOptions, NvmlBackend
from agent.hw.nvml_probe import NvmlProbe, subprocess_runner
from agent.metrics import MetricSpec, Sample
from agent.options import (
    DIRECTORY,
    boolean,
    int_list,
    option,
    parse_duration,
    path_option,
    string,
    whole,
)

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

NVML_DISABLED = MetricSpec(
    "suanli_nvml_function_disabled",
    "gauge",
    "NVML functions the agent does not call: their first call, made in a child process, "
    "killed it (value 1).",
    ("function", "reason"),
)


# Each GPU's read must end within this share of the interval: the rest of the cycle is for
# the GPU views (job accounting) and rendering.
GPU_DEADLINE_SHARE = 0.6


@dataclass(frozen=True)
class GpuOptions:
    enabled: bool = option(True, boolean)
    detail: bool = option(False, boolean)
    xid_events: bool = option(True, boolean)
    gpm: bool = option(True, boolean)
    xid_window: float = option(3600.0, parse_duration)  # health: how long an XID stays critical
    # health: XIDs that fail xid_critical; empty: those NVIDIA's catalogue says need an operator
    critical_xids: tuple[int, ...] = option((), int_list(1, 999, "[48, 79, 94]"))
    expected_gpus: int = option(0, whole(0, 1024, "a whole number of GPUs (0: the PCI bus)"))
    sysfs: str = path_option("/sys", DIRECTORY)
    # where the outcomes of probing unvalidated NVML calls are kept, per driver ("": in memory)
    probe_state: str = option("", string)


class GpuCollector:
    """Exports every GPU family of the metric contract from an `NvmlBackend`, then hands the
    cycle's reading to each GPU view (health, MIG, jobs, kernel log), which fail alone."""

    name = "gpu"

    def __init__(
        self,
        backend: NvmlBackend,
        options: GpuOptions | None = None,
        clock: Callable[[], float] = time.time,
        views: Sequence[GpuView] = (),
    ) -> None:
        self.backend = backend
        self.options = options or GpuOptions()
        self.views = list(views)
        self.responsiveness = Responsiveness(clock)
        self.last: GpuSnapshot | None = None
        self.failed_parts: list[str] = []  # GPUs whose read failed this cycle
        self.view_outcomes: list[ViewOutcome] = []
        self.delivered = delivered_metrics.DeliveredWork()

    def specs(self) -> Sequence[MetricSpec]:
        families = [f.spec for f in FAMILIES if self.options.detail or not f.spec.detail]
        ratios = [s for s in activity.SPECS if self.options.detail or not s.detail]
        core = [NVML_UP, NVML_INFO, NVML_ERRORS, NVML_DISABLED, INFO, UP, *families, *ratios]
        core += delivered_metrics.SPECS
        return [*core, *gpu_presence.SPECS, *(s for view in self.views for s in view.specs())]

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
        self.view_outcomes = [ViewOutcome.of(view, snapshot) for view in self.views]
        for outcome in self.view_outcomes:
            samples += outcome.samples
        return samples

    def _gpu_samples(self, reading: GpuReading, snapshot: GpuSnapshot) -> list[Sample]:
        ids = gpu_ids(reading.device)
        samples = [
            Sample(UP, ids, 1.0 if reading.up else 0.0),
            _info(reading, snapshot.status, ids),
        ]
        samples += self.responsiveness.samples(reading, ids)
        if not reading.up:
            return samples
        detail = self.options.detail
        samples += activity.gpu_samples(reading, ids, detail)
        samples += self.delivered.samples(reading, ids)
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

    def close(self) -> None:
        for view in self.views:
            view.close()
        self.backend.close()


def _nvml_samples(snapshot: GpuSnapshot) -> list[Sample]:
    status = snapshot.status
    samples = [Sample(NVML_UP, (), 1.0 if status.up else 0.0)]
    if status.up:
        versions = (status.driver_version, status.nvml_version, status.cuda_driver_version)
        samples.append(Sample(NVML_INFO, tuple(v or "" for v in versions), 1.0))
    for (function, error), count in sorted(snapshot.errors.items()):
        samples.append(Sample(NVML_ERRORS, (function, error), float(count)))
    for function, why in snapshot.disabled.items():
        samples.append(Sample(NVML_DISABLED, (function, why), 1.0))
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


def build(options: GpuOptions, context: Context) -> GpuCollector:
    """The NVML backend, the GPU collector over it, and every GPU view whose section is on."""
    parts = context.parts
    gateway = NvmlGateway(parts.nvml)
    gateway.probe = NvmlProbe(
        lambda: str(gateway.nv.nvmlSystemGetDriverVersion()),
        parts.nvml_probe or subprocess_runner,
        options.probe_state,
    )
    backend = NvmlBackend(
        gateway,
        BackendOptions(
            xid_events=options.xid_events,
            gpm=options.gpm,
            processes=context.options("jobs").enabled,
            gpu_deadline_s=GPU_DEADLINE_SHARE * context.interval,
            inline=parts.inline,
            sysfs=parts.sysfs or options.sysfs,
            expected_gpus=options.expected_gpus,
        ),
    )
    views = [
        kind.build(context.options(kind.section), context, backend)
        for kind in context.views
        if context.options(kind.section).enabled
    ]
    return GpuCollector(backend, options, views=views)


KIND = Kind(
    "gpu",
    GpuOptions,
    build,
    "GPU: NVML, readings, presence and activity (collector `gpu`)",
    (
        NVML_UP,
        NVML_INFO,
        NVML_ERRORS,
        NVML_DISABLED,
        INFO,
        UP,
        *(f.spec for f in FAMILIES),
        *activity.SPECS,
        *delivered_metrics.SPECS,
        *gpu_presence.SPECS,
    ),
)
