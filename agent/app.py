"""Wiring: config -> collectors -> sampler -> renderer; shared by the CLI, tests and benchmarks."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.collectors.base import Collector
from agent.collectors.gpu import GpuCollector, GpuOptions
from agent.collectors.health import HealthOptions
from agent.collectors.host import HostCollector
from agent.collectors.jobs import JobAccounting, JobsOptions
from agent.collectors.power import PowerCollector
from agent.config import Config, JobsCollectorConfig
from agent.exposition import Renderer
from agent.hw.host import HostReader
from agent.hw.nvml import NvmlGateway, pynvml
from agent.hw.nvml_backend import BackendOptions, NvmlBackend
from agent.hw.rapl import RaplReader
from agent.sampler import Sampler


@dataclass
class Agent:
    config: Config
    collectors: list[Collector]
    sampler: Sampler
    renderer: Renderer

    def exposition(self) -> str:
        """One sample, rendered as Prometheus text: what `--once` prints."""
        snapshot = self.sampler.sample_once()
        body, _ = self.renderer.render(snapshot)
        return body.decode()


def nvml_module(config: Config, fake_clock: Callable[[], float] | None = None) -> Any:
    """The real pynvml, or the scenario-driven fake when the backend is `fake`."""
    if config.backend != "fake":
        return pynvml
    from agent.hw.fake_nvml import FakeNvml
    from agent.hw.fake_scenario import load_scenario

    return FakeNvml(load_scenario(config.fake_scenario), clock=fake_clock)


def job_accounting(jobs: JobsCollectorConfig, nvml: Any) -> JobAccounting:
    """Job accounting; under the simulator, over a procfs the simulator writes for its jobs."""
    procfs, host_root, before_read = jobs.procfs, jobs.host_root, None
    if nvml is not pynvml:
        from agent.hw.fake_procfs import FakeProcfs, write_runtime_state

        host_root = tempfile.mkdtemp(prefix="suanli-fake-host-")
        atexit.register(shutil.rmtree, host_root, ignore_errors=True)
        procfs = str(Path(host_root) / "proc")
        write_runtime_state(nvml.scenario, host_root)
        before_read = FakeProcfs(nvml.scenario, procfs, clock=nvml.now).sync
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
    collectors: list[Collector] = []
    host = config.collectors.host
    if host.enabled:
        collectors.append(HostCollector(HostReader(host.procfs), config.topology, hostname))
    power = config.collectors.power
    if power.enabled:
        collectors.append(PowerCollector(RaplReader(power.sysfs), power.sysfs))
    gpu = config.collectors.gpu
    if gpu.enabled:
        module = nvml if nvml is not None else nvml_module(config)
        jobs = config.collectors.jobs
        backend = NvmlBackend(
            NvmlGateway(module),
            BackendOptions(xid_events=gpu.xid_events, gpm=gpu.gpm, processes=jobs.enabled),
        )
        health = HealthOptions(gpu.xid_window, frozenset(gpu.critical_xids))
        options = GpuOptions(detail=gpu.detail, health=health)
        accounting = job_accounting(jobs, module) if jobs.enabled else None
        collectors.append(GpuCollector(backend, options, jobs=accounting))
    specs = [spec for collector in collectors for spec in collector.specs()]
    sampler = Sampler(collectors, config.interval)
    return Agent(config, collectors, sampler, Renderer(specs))
