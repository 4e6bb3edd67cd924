"""Host metrics: CPU time by mode, CPU count, memory, load, and the node's identity."""

from __future__ import annotations

import logging
import platform
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from agent import __version__
from agent.collectors.base import Context, Kind
from agent.hw.host import HostReader
from agent.metrics import MetricSpec, Sample
from agent.options import DIRECTORY, Topology, boolean, option, path_option

log = logging.getLogger(__name__)

CPU_SECONDS = MetricSpec(
    "suanli_cpu_seconds_total",
    "counter",
    "CPU time spent in each mode, summed over all CPUs.",
    ("mode",),
)
CPU_COUNT = MetricSpec("suanli_cpus", "gauge", "CPUs, logical and physical cores.", ("kind",))
MEMORY_TOTAL = MetricSpec("suanli_memory_total_bytes", "gauge", "Physical memory installed.")
MEMORY_AVAILABLE = MetricSpec(
    "suanli_memory_available_bytes", "gauge", "Memory available to start new work without swapping."
)
LOAD1 = MetricSpec("suanli_load1", "gauge", "One-minute load average.")
NODE_INFO = MetricSpec(
    "suanli_node_info",
    "gauge",
    "The node's identity and the topology configured for it (value 1).",
    ("hostname", "cluster", "hall", "rack", "agent_version"),
)


@dataclass(frozen=True)
class HostOptions:
    enabled: bool = option(True, boolean)
    procfs: str = path_option("/proc", DIRECTORY)


class HostCollector:
    """Reads the host through a `HostReader`; static facts (CPU count, identity) once."""

    name = "host"

    def __init__(
        self,
        reader: HostReader,
        topology: Topology,
        hostname: str | None = None,
    ) -> None:
        self.reader = reader
        self._static = [
            *_cpu_counts(reader),
            Sample(
                NODE_INFO,
                (
                    hostname or socket.gethostname() or platform.node(),
                    topology.cluster,
                    topology.hall,
                    topology.rack,
                    __version__,
                ),
                1.0,
            ),
        ]

    def specs(self) -> Sequence[MetricSpec]:
        return [CPU_SECONDS, CPU_COUNT, MEMORY_TOTAL, MEMORY_AVAILABLE, LOAD1, NODE_INFO]

    def collect(self) -> list[Sample]:
        reading = self.reader.read()
        samples = [Sample(CPU_SECONDS, (mode,), v) for mode, v in reading.cpu_seconds.items()]
        samples += [
            Sample(MEMORY_TOTAL, (), reading.memory_total_bytes),
            Sample(MEMORY_AVAILABLE, (), reading.memory_available_bytes),
            Sample(LOAD1, (), reading.load1),
        ]
        return samples + self._static

    def close(self) -> None:
        return None


def _cpu_counts(reader: HostReader) -> list[Sample]:
    try:
        logical, physical = reader.cpu_counts()
    except OSError as err:
        log.warning("CPU count unknown, cannot read cpuinfo: %s", err)
        return []
    return [
        Sample(CPU_COUNT, ("logical",), float(logical)),
        Sample(CPU_COUNT, ("physical",), float(physical)),
    ]


def build(options: HostOptions, context: Context) -> HostCollector:
    reader = context.parts.host_reader or HostReader(options.procfs)
    return HostCollector(reader, context.topology, context.hostname)


KIND = Kind(
    "host",
    HostOptions,
    build,
    "Host (collector `host`)",
    (CPU_SECONDS, CPU_COUNT, MEMORY_TOTAL, MEMORY_AVAILABLE, LOAD1, NODE_INFO),
)
