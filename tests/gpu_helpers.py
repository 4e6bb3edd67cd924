"""Running the real NVML code path (gateway, backend, GPU collector) against the fake, in tests."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from agent.collectors.base import GpuView
from agent.collectors.gpu import GpuCollector, GpuOptions
from agent.collectors.health import GpuHealth, HealthOptions
from agent.collectors.job_options import JobsOptions
from agent.collectors.jobs import JobAccounting
from agent.collectors.mig import MigInstances
from agent.hw.nvml import NvmlGateway
from agent.hw.nvml_backend import BackendOptions, NvmlBackend
from agent.hw.xid_ledger import XidLedger
from agent.metrics import Sample
from suanli_sim.cabi.nvml import CAbiNvml
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_procfs import FakeProcfs
from suanli_sim.fake_scenario import Scenario, load_scenario, parse_scenario

Series = dict[tuple[str, tuple[str, ...]], float]


@dataclass
class SimClock:
    """Simulated time, advanced by the test."""

    t: float = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Node:
    """A GPU collector wired to a fake NVML at a simulated time the test controls."""

    scenario: Scenario
    detail: bool = False
    xid_events: bool = True
    jobs_procfs: str = ""  # a folder for the simulated procfs: turns job accounting on
    clock: SimClock = field(default_factory=SimClock)

    def __post_init__(self) -> None:
        self.fake = FakeNvml(self.scenario, clock=self.clock, sleep=lambda s: None)
        self.nvml = CAbiNvml(self.fake)  # NVIDIA's pynvml over the fake C library
        self.gateway = NvmlGateway(self.nvml, clock=self.clock, backoff_initial=1.0)
        self.backend = NvmlBackend(
            self.gateway,
            BackendOptions(xid_events=self.xid_events, xid_wait_ms=50),
            self.clock,
            XidLedger(clock=self.clock),
        )
        self.health = GpuHealth(HealthOptions(), clock=self.clock)
        views: list[GpuView] = [self.health, MigInstances()]
        if self.jobs_procfs:
            procfs = FakeProcfs(self.scenario, self.jobs_procfs, clock=self.clock)
            options = JobsOptions(procfs=self.jobs_procfs, host_root="", retention=1e9)
            views.append(JobAccounting(options, clock=self.clock, before_read=procfs.sync))
        self.collector = GpuCollector(
            self.backend, GpuOptions(detail=self.detail), clock=self.clock, views=views
        )
        OPEN_NODES.append(self)

    def close(self) -> None:
        self.collector.close()

    def wait_for_xids(self, total: int, timeout: float = 10.0) -> None:
        """Wait until the listener thread has counted `total` XIDs over all GPUs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.backend.ledger.record()
            if sum(sum(codes.values()) for codes in record.counts.values()) >= total:
                return
            time.sleep(0.02)
        raise AssertionError(f"fewer than {total} XIDs counted: {self.backend.ledger.record()}")

    def at(self, t: float) -> Series:
        """Collect at simulated time `t` and return {(name, labels): value}."""
        self.clock.t = t
        return as_series(self.collector.collect())


OPEN_NODES: list[Node] = []


def close_nodes() -> None:
    """Stop every node's listener threads (called after each test by conftest)."""
    while OPEN_NODES:
        OPEN_NODES.pop().close()


def node(
    scenario: str, detail: bool = False, xid_events: bool = True, jobs_procfs: str = ""
) -> Node:
    """A node running a built-in scenario, or a scenario given as YAML text."""
    loaded = parse_scenario(scenario) if "\n" in scenario else load_scenario(scenario)
    return Node(loaded, detail, xid_events, jobs_procfs)


def as_series(samples: list[Sample]) -> Series:
    series: Series = {}
    for sample in samples:
        key = (sample.spec.name, sample.labels)
        assert key not in series, f"duplicate series {key}"
        series[key] = sample.value
    return series


def by_gpu(series: Series, name: str) -> dict[str, float]:
    """{gpu index: value} of a family with no extra labels."""
    return {labels[0]: v for (n, labels), v in series.items() if n == name}


def keyed(series: Series, name: str) -> dict[str, dict[str, float]]:
    """{gpu index: {extra label value: value}} of a family with one extra label."""
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for (n, labels), value in series.items():
        if n == name:
            found[labels[0]][labels[2]] = value
    return dict(found)


def families_of_gpu(series: Series, gpu: str) -> set[str]:
    return {
        n
        for (n, labels), _ in series.items()
        if labels[:1] == (gpu,) and n.startswith("suanli_gpu")
    }
