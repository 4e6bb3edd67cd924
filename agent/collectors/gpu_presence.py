"""Which GPUs are there, which are not answering and for how long, and the NVSwitch fabric.

`suanli_gpus{state}` compares what the node should have (PCI bus, configuration, GPUs seen)
with what answers. A GPU that does not answer keeps `suanli_gpu_up 0` and gains
`suanli_gpu_unresponsive_seconds{reason}` (present only while it is down, so a healthy node
pays no series for it): `lost` (GPU_IS_LOST), `hung` (its calls did not return within the
deadline), `error` (it answered nothing but errors), `missing` (expected, not listed by NVML),
`nvml_down` (the library is gone). A GPU NVML does not list is named by its PCI bus id in the
`gpu` label, with an empty `uuid` when the agent never saw it answer.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from agent.hw import GpuDevice, GpuInventory, GpuReading
from agent.metrics import MetricSpec, Sample

GPU = ("gpu", "uuid")
GPUS = MetricSpec(
    "suanli_gpus",
    "gauge",
    "GPUs this node should have (PCI bus, configuration, seen), has answering, and has lost.",
    ("state",),
)
UNRESPONSIVE = MetricSpec(
    "suanli_gpu_unresponsive_seconds",
    "gauge",
    "Seconds since the GPU last answered, present only while it does not, with why.",
    (*GPU, "reason"),
)
FABRIC_INFO = MetricSpec(
    "suanli_gpu_fabric_info",
    "gauge",
    "NVSwitch fabric registration (value 1; state, status and clique as NVML names them).",
    (*GPU, "state", "status", "clique_id"),
)
SPECS = (GPUS, UNRESPONSIVE, FABRIC_INFO)
FABRIC_STATES = {1: "not_started", 2: "in_progress", 3: "completed"}
FABRIC_COMPLETED = 3


def gpu_ids(device: GpuDevice) -> tuple[str, str]:
    """(gpu, uuid): the NVML index, or the PCI bus id of a GPU NVML does not list."""
    return (str(device.index) if device.index >= 0 else device.pci_bus_id, device.uuid)


def inventory_samples(inventory: GpuInventory | None) -> list[Sample]:
    if inventory is None:
        return []
    return [
        Sample(GPUS, ("expected",), float(inventory.expected)),
        Sample(GPUS, ("present",), float(inventory.present)),
        Sample(GPUS, ("lost",), float(inventory.lost)),
    ]


def fabric_problem(reading: GpuReading) -> bool:
    """The GPU has a fabric and its registration has not completed successfully."""
    if reading.fabric_state is None:
        return False
    return reading.fabric_state != FABRIC_COMPLETED or reading.fabric_status != 0


def fabric_samples(reading: GpuReading, ids: tuple[str, str]) -> list[Sample]:
    if reading.fabric_state is None:
        return []
    state = FABRIC_STATES.get(reading.fabric_state, str(reading.fabric_state))
    status = "success" if reading.fabric_status == 0 else str(reading.fabric_status)
    clique = "" if reading.fabric_clique is None else str(reading.fabric_clique)
    return [Sample(FABRIC_INFO, (*ids, state, status, clique), 1.0)]


class Responsiveness:
    """Remembers when each GPU last answered, to say how long a silent one has been silent."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._started = clock()
        self._last_up: dict[Hashable, float] = {}

    def samples(self, reading: GpuReading, ids: tuple[str, str]) -> list[Sample]:
        key = reading.device.uuid or reading.device.xid_key
        now = self._clock()
        if reading.up:
            self._last_up[key] = now
            return []
        since = self._last_up.get(key, self._started)
        reason = reading.down_reason or "error"
        return [Sample(UNRESPONSIVE, (*ids, reason), max(0.0, now - since))]
