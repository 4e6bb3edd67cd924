"""Where each simulated node sits: cluster, hall, rack, hostname and loopback port.

Nodes fill racks in order (`nodes_per_rack` each), racks fill halls (`racks_per_hall` each);
hostnames follow the inventory example, `gpu-h01-r001-01` (hall, rack within the hall, slot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_NODES_PER_RACK = 4  # an HGX H100 node draws ~10 kW; ~40 kW racks hold four
DEFAULT_RACKS_PER_HALL = 25


@dataclass(frozen=True)
class Placement:
    """One node's place in the fleet."""

    index: int
    hostname: str
    cluster: str
    hall: str
    rack: str
    port: int


@dataclass(frozen=True)
class Layout:
    cluster: str
    halls: int
    racks_per_hall: int
    nodes_per_rack: int

    @property
    def capacity(self) -> int:
        return self.halls * self.racks_per_hall * self.nodes_per_rack


def layout(
    nodes: int,
    cluster: str,
    halls: int | None = None,
    racks_per_hall: int | None = None,
    nodes_per_rack: int | None = None,
) -> Layout:
    """A layout holding `nodes`; the sizes not given are derived. Raises ValueError."""
    per_rack = nodes_per_rack or DEFAULT_NODES_PER_RACK
    racks_needed = math.ceil(nodes / per_rack)
    if halls is None:
        per_hall = racks_per_hall or DEFAULT_RACKS_PER_HALL
        halls = math.ceil(racks_needed / per_hall)
    elif racks_per_hall is None:
        per_hall = math.ceil(racks_needed / halls)
    else:
        per_hall = racks_per_hall
    result = Layout(cluster, halls, per_hall, per_rack)
    if result.capacity < nodes:
        raise ValueError(
            f"{halls} halls x {per_hall} racks x {per_rack} nodes hold {result.capacity} "
            f"nodes, fewer than --nodes {nodes}"
        )
    return result


def place(nodes: int, fleet: Layout, base_port: int) -> list[Placement]:
    """Every node's placement, node i on port base_port + i."""
    placements = []
    for i in range(nodes):
        rack_number, slot = divmod(i, fleet.nodes_per_rack)
        hall, rack = divmod(rack_number, fleet.racks_per_hall)
        hall_name, rack_name = f"h{hall + 1:02d}", f"r{rack + 1:03d}"
        hostname = f"gpu-{hall_name}-{rack_name}-{slot + 1:02d}"
        placements.append(
            Placement(i, hostname, fleet.cluster, hall_name, rack_name, base_port + i)
        )
    return placements
