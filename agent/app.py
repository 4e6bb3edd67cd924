"""Wiring: config -> collectors -> sampler -> renderer; shared by the CLI, tests and benchmarks."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
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
from agent.hw.nvml import NvmlGateway, pynvml
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


def nvml_module(config: Config, fake_clock: Callable[[], float] | None = None) -> Any:
    """The real pynvml, or the scenario-driven fake when the backend is `fake`."""
    if config.backend != "fake":
        return pynvml
    from agent.hw.fake_nvml import FakeNvml
    from agent.hw.fake_scenario import load_scenario

    return FakeNvml(load_scenario(config.fake_scenario), clock=fake_clock)


def fake_host(nvml: Any) -> str:
    """A temporary host root for the simulator: its runtime state and its PCI bus (`sys/`)."""
    from agent.hw.fake_procfs import write_runtime_state
    from agent.hw.fake_sysfs import write_pci_devices

    host_root = tempfile.mkdtemp(prefix="suanli-fake-host-")
    atexit.register(shutil.rmtree, host_root, ignore_errors=True)
    write_runtime_state(nvml.scenario, host_root)
    write_pci_devices(nvml.scenario, str(Path(host_root) / "sys"))
    return host_root


def infiniband_reader(
    sysfs: str, counters: tuple[str, ...] | None, nvml: Any, host_root: str | None
) -> InfinibandReader:
    """The IB ports under `sysfs`; under the simulator, the scenario's simulated ports."""
    if host_root is None:
        return InfinibandReader(sysfs, counters)
    from agent.hw.fake_infiniband import FakeInfinibandReader

    scenario = nvml.scenario
    root = str(Path(host_root) / "sys")
    return FakeInfinibandReader(root, scenario.infiniband, scenario.seed, nvml.now, counters)


def kernel_log(
    config: Config, ledger: XidLedger, nvml: Any, host_root: str | None
) -> KernelLog | None:
    """The kernel-log reader (started); under the simulator, over the node's simulated log,
    unless a log to replay is configured."""
    kmsg = config.collectors.kmsg
    if not kmsg.enabled:
        return None
    if host_root is None or kmsg.path != KmsgCollectorConfig().path:
        reader = KernelLog(kmsg.path, kmsg.state_file, ledger)
    else:
        from agent.hw.fake_kmsg import FakeKmsg, FakeKmsgFollower

        writer = FakeKmsg(nvml, str(Path(host_root) / "kmsg"))
        reader = KernelLog(str(writer.path), "", ledger, follower=lambda: FakeKmsgFollower(writer))
    reader.start()
    return reader


def job_accounting(jobs: JobsCollectorConfig, nvml: Any, host_root: str | None) -> JobAccounting:
    """Job accounting; under the simulator, over a procfs the simulator writes for its jobs."""
    procfs, before_read = jobs.procfs, None
    if host_root is not None:
        from agent.hw.fake_procfs import FakeProcfs

        procfs = str(Path(host_root) / "proc")
        before_read = FakeProcfs(nvml.scenario, procfs, clock=nvml.now).sync
    else:
        host_root = jobs.host_root
    options = JobsOptions(
        procfs=procfs,
        host_root=host_root,
        hpc_job_mapping_dir=jobs.hpc_job_mapping_dir,
        retention_seconds=jobs.retention,
        per_process=jobs.per_process,
        per_process_limit=jobs.per_process_limit,
    )
    return JobAccounting(options, before_read=before_read)


def build(config: Config, *, nvml: Any = None, hostname: str | None = None) -> Agent:
    """Make the collectors the configuration enables, a sampler over them and a renderer.

    Raises `ScenarioError` (a ValueError) for a fake scenario that cannot be loaded.
    """
    module = nvml if nvml is not None else nvml_module(config)
    host_root = None if module is pynvml else fake_host(module)
    collectors: list[Collector] = []
    host = config.collectors.host
    if host.enabled:
        collectors.append(HostCollector(HostReader(host.procfs), config.topology, hostname))
    power = config.collectors.power
    if power.enabled:
        collectors.append(PowerCollector(RaplReader(power.sysfs), power.sysfs))
    if config.collectors.gpu.enabled:
        collectors.append(gpu_collector(config, module, host_root))
    ib = config.collectors.infiniband
    if ib.enabled:
        reader = infiniband_reader(ib.sysfs, counters_read(ib.detail), module, host_root)
        collectors.append(InfinibandCollector(reader, ib.detail))
    specs = [spec for collector in collectors for spec in collector.specs()]
    sampler = Sampler(collectors, config.interval)
    compat = DcgmCompat(hostname) if config.exposition.dcgm_compat else None
    return Agent(config, collectors, sampler, Renderer(specs, compat))


def gpu_collector(config: Config, nvml: Any, host_root: str | None) -> GpuCollector:
    """The GPU collector: NVML backend, health, job accounting and the kernel log."""
    gpu, jobs = config.collectors.gpu, config.collectors.jobs
    backend = NvmlBackend(
        NvmlGateway(nvml),
        BackendOptions(
            xid_events=gpu.xid_events,
            gpm=gpu.gpm,
            processes=jobs.enabled,
            gpu_deadline_s=GPU_DEADLINE_SHARE * config.interval,
            sysfs=gpu.sysfs if host_root is None else str(Path(host_root) / "sys"),
            expected_gpus=gpu.expected_gpus,
        ),
    )
    health = HealthOptions(gpu.xid_window, frozenset(gpu.critical_xids))
    options = GpuOptions(detail=gpu.detail, health=health)
    accounting = job_accounting(jobs, nvml, host_root) if jobs.enabled else None
    kmsg = kernel_log(config, backend.ledger, nvml, host_root)
    return GpuCollector(backend, options, jobs=accounting, kernel_log=kmsg)
