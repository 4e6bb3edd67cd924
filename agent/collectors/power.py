"""CPU power from RAPL and the node's power by source: gpu (from the GPU collector), cpu, dram,
and the platform meter where the host has one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.collectors.base import Context, Kind
from agent.hw.rapl import RaplReader, find_power_meter, power_meter_watts
from agent.metrics import MetricSpec, Sample
from agent.options import DIRECTORY, boolean, option, path_option

CPU_ENERGY = MetricSpec(
    "suanli_cpu_energy_joules_total",
    "counter",
    "CPU energy from RAPL, by domain and socket, made monotonic across register wraps.",
    ("domain", "socket"),
)
CPU_POWER = MetricSpec(
    "suanli_cpu_power_watts",
    "gauge",
    "CPU power from RAPL over the last sampling interval, by domain and socket.",
    ("domain", "socket"),
)
NODE_POWER = MetricSpec(
    "suanli_node_power_watts",
    "gauge",
    "The node's power by source: gpu (sum of GPUs), cpu, dram (RAPL), meter (platform meter).",
    ("source",),
)
SOURCE_OF_DOMAIN = {"package": "cpu", "dram": "dram"}


@dataclass(frozen=True)
class PowerOptions:
    enabled: bool = option(True, boolean)
    sysfs: str = path_option("/sys", DIRECTORY)


class PowerCollector:
    """RAPL energy and power per socket, and the node totals that RAPL and the meter give."""

    name = "power"

    def __init__(self, rapl: RaplReader, sysfs: str = "/sys") -> None:
        self.rapl = rapl
        self.meter = find_power_meter(sysfs)
        self._zones: dict[str, int] = {}
        for zone in rapl.zones:
            self._zones[zone.domain] = self._zones.get(zone.domain, 0) + 1

    def specs(self) -> Sequence[MetricSpec]:
        return [CPU_ENERGY, CPU_POWER, NODE_POWER]

    def collect(self) -> list[Sample]:
        samples: list[Sample] = []
        totals: dict[str, list[float]] = {}
        for reading in self.rapl.read():
            labels = (reading.domain, reading.socket)
            samples.append(Sample(CPU_ENERGY, labels, reading.joules))
            if reading.watts is not None:
                samples.append(Sample(CPU_POWER, labels, reading.watts))
                totals.setdefault(reading.domain, []).append(reading.watts)
        for domain, watts in totals.items():
            if len(watts) == self._zones[domain]:  # a total missing a socket would mislead
                samples.append(Sample(NODE_POWER, (SOURCE_OF_DOMAIN[domain],), sum(watts)))
        meter = None if self.meter is None else power_meter_watts(self.meter)
        if meter is not None:
            samples.append(Sample(NODE_POWER, ("meter",), meter))
        return samples

    def close(self) -> None:
        return None


def build(options: PowerOptions, context: Context) -> PowerCollector:
    parts = context.parts
    rapl = parts.rapl or RaplReader(options.sysfs)
    return PowerCollector(rapl, parts.power_sysfs or options.sysfs)


KIND = Kind(
    "power",
    PowerOptions,
    build,
    'Power (collector `power`; `source="gpu"` from collector `gpu`)',
    (CPU_ENERGY, CPU_POWER, NODE_POWER),
)
