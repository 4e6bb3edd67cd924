"""One simulated node: the agent `agent.app.build` makes over a simulated host, sampled inline.

Each node is the agent's own wiring over `suanli_sim.host.simulated_parts`: a fake NVML, the
node's PCI bus, InfiniBand ports, kernel log and job procfs under a folder of the fleet's
temporary tree, a simulated /proc (CPU) and RAPL. One thing differs from a node's daemon, so a
thousand nodes run in one process without a thousand threads each: `Parts(inline=True)` reads
every collector, every GPU and the XID events in the calling thread (the fleet's scheduler), with
no deadline (the simulator injects no hangs), and drains the kernel log once a cycle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from agent.app import build
from agent.config import Config, with_overrides
from agent.exposition import Renderer
from agent.http_stats import HTTP_SPECS, HttpStats
from agent.reload import RELOAD_SPECS, ReloadStatus
from agent.sampler import Sampler
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fleet.hostsim import NO_SYSFS, SimHostReader, SimRapl
from suanli_sim.fleet.scenarios import NodePlan
from suanli_sim.host import simulated_parts

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
        self.http = HttpStats(period=sampler.interval)
        renderer.attach(HTTP_SPECS, self.http.samples)  # as the agent's runner does

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


def build_node(
    plan: NodePlan,
    interval: float,
    config: Config,
    root: Path,
    clock: Callable[[], float] | None = None,
    kubelet: bool = False,
) -> SimNode:
    """The agent `agent.app.build` makes over the node's simulated parts, sampled inline;
    `clock`: the fake NVML's simulated time (default: seconds since it was made). `kubelet`:
    serve a scenario's `kubelet: true` on a gRPC server (its own threads, stopped by `close()`;
    the fleet's runtime asks for it, a node built alone starts no thread)."""
    place, seed = plan.placement, plan.scenario.seed
    load = HOST_LOAD.get(plan.role, 0.1)
    config = with_overrides(
        dataclasses.replace(node_config(plan, config), interval=interval),
        {
            "topology.cluster": place.cluster,
            "topology.hall": place.hall,
            "topology.rack": place.rack,
        },
    )
    fake = FakeNvml(plan.scenario, clock=clock)
    parts = simulated_parts(
        fake,
        root / place.hostname,
        inline=True,
        c_abi=False,  # thousands of GPUs: the Python stand-in, answered by the same engine
        host_reader=SimHostReader(seed, load),
        rapl=(SimRapl(seed, load), NO_SYSFS),
        kubelet=kubelet,
    )
    try:
        agent = build(config, parts=parts, hostname=place.hostname)
    except BaseException:
        if parts.stop is not None:
            parts.stop()
        raise
    agent.renderer.attach(RELOAD_SPECS, ReloadStatus().samples)  # as the agent's runner does
    return SimNode(plan, agent.sampler, agent.renderer)


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
