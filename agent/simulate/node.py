"""One simulated node: the agent's collectors over a fake NVML, its sampler and its renderer.

The collectors are built as `agent.app.build` builds them (GPU with health, activity, MIG and
job accounting; power; host), from the default configuration's options, and sampled by the
real `Sampler.sample_once` and rendered by the real `Renderer`. Two things differ, both to
run a thousand nodes in one process without a thousand threads each:

- `Sampler(..., inline=True)` runs each collector in the calling thread (the scheduler's), where the
  agent gives every collector a worker thread of its own to survive hung NVML calls (the fake
  never hangs: the simulator injects no `slow_call` faults);
- the NVML backend runs inline too (`BackendOptions(inline=True)`): its GPUs are read one
  after another and its XID listener drains the event set once a cycle instead of waiting on
  it from a thread of its own;
- the kernel log (`agent.hw.fake_kmsg`: the scenario's XID and SXid lines, in a file of the
  node's folder) is drained once a cycle, before the GPU collector reports, instead of by a
  watcher thread of its own.

Each node also has its own PCI bus (`agent.hw.fake_sysfs`, under `<node>/sys`), from which the
agent knows which GPUs to expect: a `missing` fault is seen there, as on a real node.

Job accounting reads each node's own fake procfs (`agent.hw.fake_procfs`, as `--fake` does),
in a folder of the fleet's temporary tree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.collectors.base import Collector
from agent.collectors.gpu import GpuCollector, GpuOptions
from agent.collectors.health import HealthOptions
from agent.collectors.host import HostCollector
from agent.collectors.infiniband import InfinibandCollector, counters_read
from agent.collectors.jobs import JobAccounting, JobsOptions
from agent.collectors.kernel_log import KernelLog
from agent.collectors.power import PowerCollector
from agent.config import Config, TopologyConfig, with_overrides
from agent.exposition import Renderer
from agent.hw.fake_infiniband import FakeInfinibandReader
from agent.hw.fake_kmsg import FakeKmsg, FakeKmsgFollower
from agent.hw.fake_nvml import FakeNvml
from agent.hw.fake_procfs import FakeProcfs, write_runtime_state
from agent.hw.fake_sysfs import write_pci_devices
from agent.hw.nvml import NvmlGateway
from agent.hw.nvml_backend import BackendOptions, NvmlBackend
from agent.metrics import Sample
from agent.reload import RELOAD_SPECS, ReloadStatus
from agent.sampler import Sampler
from agent.simulate.hostsim import NO_SYSFS, SimHostReader, SimRapl
from agent.simulate.scenarios import NodePlan

DETAIL_ROLES = frozenset({"shared"})  # gpu.detail, jobs.per_process and infiniband.detail on
HOST_LOAD = {  # the share of a node's CPUs its role keeps busy (data loaders, serving)
    "train": 0.25,
    "train-k8s": 0.25,
    "capped": 0.25,
    "fault": 0.22,
    "shared": 0.2,
    "mig": 0.15,
    "infer": 0.12,
    "l40s": 0.1,
    "rtx4090": 0.1,
    "idle-alloc": 0.04,
    "idle": 0.02,
}


class SimNode:
    """A node's sampler and renderer, and the format its scraper last asked for (rendered
    ahead, right after each sample, so a scrape only copies bytes)."""

    def __init__(self, plan: NodePlan, sampler: Sampler, renderer: Renderer) -> None:
        self.plan = plan
        self.sampler = sampler
        self.renderer = renderer
        self.accept = ""
        self.gzipped = False
        self.scraped = False

    def sample(self) -> None:
        snapshot = self.sampler.sample_once()
        if self.scraped:
            self.renderer.render(snapshot, self.accept, self.gzipped)

    def metrics(self, accept: str, gzipped: bool) -> tuple[bytes, str] | None:
        """(body, content type) of the latest snapshot; None before the first sample."""
        snapshot = self.sampler.latest
        if snapshot is None:
            return None
        self.accept, self.gzipped, self.scraped = accept, gzipped, True
        return self.renderer.render(snapshot, accept, gzipped)

    def health(self) -> tuple[bool, str]:
        return self.sampler.health()

    def close(self) -> None:
        self.sampler.stop(timeout=0.0)


def _accounting(config: Config, fake: FakeNvml, root: Path) -> JobAccounting:
    """JobAccounting over the node's fake procfs, as `agent.app.job_accounting` does."""
    jobs = config.collectors.jobs
    procfs = root / "proc"
    write_runtime_state(fake.scenario, root)
    options = JobsOptions(
        procfs=str(procfs),
        host_root=str(root),
        hpc_job_mapping_dir=jobs.hpc_job_mapping_dir,
        retention_seconds=jobs.retention,
        per_process=jobs.per_process,
        per_process_limit=jobs.per_process_limit,
    )
    return JobAccounting(options, before_read=FakeProcfs(fake.scenario, procfs, fake.now).sync)


class InlineKernelLog(KernelLog):
    """The node's simulated kernel log, read in the sampling thread: never `start()`ed, it
    drains what the log holds each time the GPU collector asks for its samples."""

    def samples(self) -> list[Sample]:
        self.watcher.drain_once()
        return super().samples()


def gpu_collector(config: Config, fake: FakeNvml, root: Path) -> GpuCollector:
    gpu, jobs = config.collectors.gpu, config.collectors.jobs
    root.mkdir(parents=True, exist_ok=True)
    sysfs = root / "sys"
    write_pci_devices(fake.scenario, str(sysfs))
    options = BackendOptions(
        xid_events=gpu.xid_events,
        gpm=gpu.gpm,
        processes=jobs.enabled,
        inline=True,
        sysfs=str(sysfs),
        expected_gpus=gpu.expected_gpus,
    )
    backend = NvmlBackend(NvmlGateway(fake), options)
    health = HealthOptions(gpu.xid_window, frozenset(gpu.critical_xids))
    accounting = _accounting(config, fake, root) if jobs.enabled else None
    kmsg = None
    if config.collectors.kmsg.enabled:
        writer = FakeKmsg(fake, str(root / "kmsg"))
        kmsg = InlineKernelLog(
            str(writer.path), "", backend.ledger, follower=lambda: FakeKmsgFollower(writer)
        )
    return GpuCollector(
        backend, GpuOptions(detail=gpu.detail, health=health), jobs=accounting, kernel_log=kmsg
    )


def build_node(
    plan: NodePlan,
    interval: float,
    config: Config,
    root: Path,
    clock: Callable[[], float] | None = None,
) -> SimNode:
    """The node's collectors (in `agent.app.build`'s order), sampler and renderer; `clock`:
    the fake NVML's simulated time (default: seconds since it was made)."""
    place, seed = plan.placement, plan.scenario.seed
    config = node_config(plan, config)
    load = HOST_LOAD.get(plan.role, 0.1)
    topology = TopologyConfig(place.cluster, place.hall, place.rack)
    fake = FakeNvml(plan.scenario, clock=clock)
    collectors: list[Collector] = [
        HostCollector(SimHostReader(seed, load), topology, place.hostname),
        PowerCollector(SimRapl(seed, load), NO_SYSFS),
        gpu_collector(config, fake, root / place.hostname),
    ]
    ib = config.collectors.infiniband
    if ib.enabled:  # the same simulated sysfs tree `agent.app` reads under `--fake`
        sysfs = str(root / place.hostname / "sys")
        wanted = counters_read(ib.detail)
        reader = FakeInfinibandReader(sysfs, plan.scenario.infiniband, seed, fake.now, wanted)
        collectors.append(InfinibandCollector(reader, ib.detail))
    specs = [spec for collector in collectors for spec in collector.specs()]
    renderer = Renderer(specs)
    renderer.attach(RELOAD_SPECS, ReloadStatus().samples)  # as the agent's runner does
    return SimNode(plan, Sampler(collectors, interval, inline=True), renderer)


def node_config(plan: NodePlan, base: Config) -> Config:
    """The default configuration; with the detail families and per-process memory on the
    nodes of the DETAIL_ROLES, as an operator turns them on where they are debugging."""
    if plan.role not in DETAIL_ROLES:
        return base
    return with_overrides(
        base,
        {
            "collectors.gpu.detail": True,
            "collectors.jobs.per_process": True,
            "collectors.infiniband.detail": True,
        },
    )
