"""Every collector the agent can run, in sampling order, and the options section each declares.

The configuration's `collectors:` mapping is `CollectorsConfig`, one section per collector or
view with options, each the dataclass its module declares; `agent.config` checks YAML against it.
Adding a collector: its module (options, metrics as data, `KIND` or `VIEW`), and one line here
for the section and one for the kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.collectors import (
    gpu,
    health,
    host,
    infiniband,
    job_options,
    jobs,
    kernel_log,
    mig,
    power,
)
from agent.collectors.base import Collector, Context, Kind, ViewKind


@dataclass(frozen=True)
class CollectorsConfig:
    gpu: gpu.GpuOptions = field(default_factory=gpu.GpuOptions)
    host: host.HostOptions = field(default_factory=host.HostOptions)
    power: power.PowerOptions = field(default_factory=power.PowerOptions)
    jobs: job_options.JobsOptions = field(default_factory=job_options.JobsOptions)
    kmsg: kernel_log.KmsgOptions = field(default_factory=kernel_log.KmsgOptions)
    infiniband: infiniband.InfinibandOptions = field(default_factory=infiniband.InfinibandOptions)


KINDS: tuple[Kind, ...] = (host.KIND, power.KIND, gpu.KIND, infiniband.KIND)
# Fed the GPU collector's reading, in this order, each failing alone.
VIEWS: tuple[ViewKind, ...] = (health.VIEW, mig.VIEW, jobs.VIEW, kernel_log.VIEW)


def build_collectors(context: Context) -> list[Collector]:
    """Every collector whose section is enabled, built from its options and `context` (whose
    `views` are the GPU views to offer: `VIEWS`)."""
    return [
        kind.build(context.options(kind.name), context)
        for kind in KINDS
        if context.options(kind.name).enabled
    ]
