"""Wiring: config -> collectors -> sampler -> renderer; shared by the CLI, tests and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from agent.collectors.base import Collector
from agent.collectors.gpu import GpuCollector, GpuOptions
from agent.collectors.health import HealthOptions
from agent.collectors.host import HostCollector
from agent.collectors.infiniband import InfinibandCollector, counters_read
from agent.collectors.jobs import JobAccounting, JobsOptions
from agent.collectors.kernel_log import KernelLog
from agent.collectors.power import PowerCollector
from agent.config import Config, JobsCollectorConfig, KmsgCollectorConfig
from agent.dcgm_compat import DcgmCompat
from agent.exposition import Renderer
from agent.hw.host import HostReader
from agent.hw.infiniband import InfinibandReader
from agent.hw.nvml import NvmlGateway
from agent.hw.nvml_backend import BackendOptions, NvmlBackend
from agent.hw.rapl import RaplReader
from agent.hw.xid_ledger import XidLedger
from agent.metrics import Sample
from agent.sampler import CollectorResult, Sampler, Snapshot

# Each GPU's read must end within this share of the interval: the rest of the cycle is for
# the other collectors' work on the GPU collector's thread (job accounting) and rendering.
GPU_DEADLINE_SHARE = 0.6


@dataclass
class Agent:
    GPM_WINDOW_S: ClassVar[float] = 1.0  # between --once's two samples: GPM's interval

    config: Config
    collectors: list[Collector]
    sampler: Sampler
    renderer: Renderer

    def exposition(self, advance: Callable[[float], None] | None = None) -> str:
        """One sample, rendered as Prometheus text: what `--once` prints.

        GPM activity needs two samples a known interval apart, so a first sample is taken,
        then `advance(GPM_WINDOW_S)`, then the sample printed. By default `advance` sleeps (real
        NVML; skipped while NVML is down: no GPU to measure); the simulator moves its clock.
        """
        first = self.sampler.sample_once()
        if advance is not None:
            advance(self.GPM_WINDOW_S)
        elif any(s.spec.name == "suanli_nvml_up" and s.value == 1 for s in self._samples(first)):
            time.sleep(self.GPM_WINDOW_S)
        snapshot = self.sampler.sample_once()
        body, _ = self.renderer.render(snapshot)
        return body.decode()

    @staticmethod
    def _samples(snapshot: Snapshot) -> Iterator[Sample]:
        return (sample for result in snapshot.results for sample in result.samples)

    def failures(self) -> list[CollectorResult]:
        """The collectors that failed in the latest sample."""
        latest = self.sampler.latest
        return [] if latest is None else [r for r in latest.results if not r.success]


@dataclass(frozen=True)
class Parts:
    """What `build` reads the node through. Each default is the real node, found from the
    configuration; a simulator passes its stand-ins (a fake NVML, its /proc and /sys trees, its
    kernel log) here, and nowhere else."""

    nvml: Any = None  # a pynvml-shaped module; None: NVIDIA's binding
    host_reader: HostReader | None = None
    rapl: RaplReader | None = None
    power_sysfs: str | None = None  # where a power meter is looked for
    sysfs: str | None = None  # the PCI tree that says which GPUs to expect
    infiniband: Callable[[tuple[str, ...] | None], InfinibandReader] | None = None
    kernel_log: Callable[[XidLedger], KernelLog] | None = None  # when the kmsg path is the default
    jobs_procfs: str | None = None
    jobs_host_root: str | None = None
    before_jobs_read: Callable[[], None] | None = None
    inline: bool = False  # read everything in the sampling thread (a fleet in one process)


def kernel_log(config: Config, ledger: XidLedger, parts: Parts) -> KernelLog | None:
    """The kernel-log reader, started unless `inline`; the simulator's log while the configured
    path is the default one (else that file is read: a log to replay)."""
    kmsg = config.collectors.kmsg
    if not kmsg.enabled:
        return None
    if parts.kernel_log is None or kmsg.path != KmsgCollectorConfig().path:
        reader = KernelLog(kmsg.path, kmsg.state_file, ledger)
    else:
        reader = parts.kernel_log(ledger)
    if not parts.inline:
        reader.start()
    return reader


def job_accounting(jobs: JobsCollectorConfig, parts: Parts) -> JobAccounting:
    options = JobsOptions(
        procfs=parts.jobs_procfs or jobs.procfs,
        host_root=parts.jobs_host_root or jobs.host_root,
        hpc_job_mapping_dir=jobs.hpc_job_mapping_dir,
        retention_seconds=jobs.retention,
        per_process=jobs.per_process,
        per_process_limit=jobs.per_process_limit,
    )
    return JobAccounting(options, before_read=parts.before_jobs_read)


def build(config: Config, *, parts: Parts | None = None, hostname: str | None = None) -> Agent:
    """Make the collectors the configuration enables, a sampler over them and a renderer,
    reading the node through `parts` (default: the real node)."""
    parts = parts or Parts()
    collectors: list[Collector] = []
    host = config.collectors.host
    if host.enabled:
        reader = parts.host_reader or HostReader(host.procfs)
        collectors.append(HostCollector(reader, config.topology, hostname))
    power = config.collectors.power
    if power.enabled:
        rapl = parts.rapl or RaplReader(power.sysfs)
        collectors.append(PowerCollector(rapl, parts.power_sysfs or power.sysfs))
    if config.collectors.gpu.enabled:
        collectors.append(gpu_collector(config, parts))
    ib = config.collectors.infiniband
    if ib.enabled:
        wanted = counters_read(ib.detail)
        make = parts.infiniband or (lambda counters: InfinibandReader(ib.sysfs, counters))
        ib_reader = make(wanted)
        collectors.append(InfinibandCollector(ib_reader, ib.detail))
    specs = [spec for collector in collectors for spec in collector.specs()]
    sampler = Sampler(collectors, config.interval, inline=parts.inline)
    compat = DcgmCompat(hostname) if config.exposition.dcgm_compat else None
    return Agent(config, collectors, sampler, Renderer(specs, compat))


def gpu_collector(config: Config, parts: Parts) -> GpuCollector:
    """The GPU collector: NVML backend, health, job accounting and the kernel log."""
    gpu, jobs = config.collectors.gpu, config.collectors.jobs
    backend = NvmlBackend(
        NvmlGateway(parts.nvml),
        BackendOptions(
            xid_events=gpu.xid_events,
            gpm=gpu.gpm,
            processes=jobs.enabled,
            gpu_deadline_s=GPU_DEADLINE_SHARE * config.interval,
            inline=parts.inline,
            sysfs=parts.sysfs or gpu.sysfs,
            expected_gpus=gpu.expected_gpus,
        ),
    )
    health = HealthOptions(gpu.xid_window, frozenset(gpu.critical_xids))
    options = GpuOptions(detail=gpu.detail, health=health)
    accounting = job_accounting(jobs, parts) if jobs.enabled else None
    kmsg = kernel_log(config, backend.ledger, parts)
    return GpuCollector(backend, options, jobs=accounting, kernel_log=kmsg)
