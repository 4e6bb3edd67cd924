"""Host metrics from a fixture procfs of an HGX H100 node (2 sockets, loaded)."""

from __future__ import annotations

from pathlib import Path

from agent.collectors.host import HostCollector
from agent.config import TopologyConfig
from agent.hw.host import HostReader

PROC = str(Path(__file__).parent / "fixtures" / "proc-hgx")
USER_HZ = 100.0


def collect() -> dict[tuple[str, tuple[str, ...]], float]:
    topology = TopologyConfig(cluster="zjk-a", hall="H3", rack="R07")
    collector = HostCollector(HostReader(PROC), topology, hostname="gpu-h3-r07-n04")
    return {(s.spec.name, s.labels): s.value for s in collector.collect()}


def test_cpu_seconds_are_the_aggregate_stat_line_in_seconds() -> None:
    values = collect()
    assert values[("suanli_cpu_seconds_total", ("user",))] == 2755308812 / USER_HZ
    assert values[("suanli_cpu_seconds_total", ("idle",))] == 14523651200 / USER_HZ
    assert values[("suanli_cpu_seconds_total", ("iowait",))] == 2150347 / USER_HZ


def test_cpu_count_logical_and_physical() -> None:
    values = collect()
    assert values[("suanli_cpus", ("logical",))] == 4
    assert values[("suanli_cpus", ("physical",))] == 2


def test_memory_and_load() -> None:
    values = collect()
    assert values[("suanli_memory_total_bytes", ())] == 2113362216 * 1024
    assert values[("suanli_memory_available_bytes", ())] == 1790453120 * 1024
    assert values[("suanli_load1", ())] == 96.41


def test_node_info_repeats_the_configured_topology() -> None:
    values = collect()
    (labels,) = [labels for name, labels in values if name == "suanli_node_info"]
    hostname, cluster, hall, rack, _version = labels
    assert (hostname, cluster, hall, rack) == ("gpu-h3-r07-n04", "zjk-a", "H3", "R07")
