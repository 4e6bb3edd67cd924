"""Which GPUs a node should have, so a GPU that stops answering, or never did, stays visible.

A GPU is expected when it is on the PCI bus (an NVIDIA display or 3D controller under the
configured sysfs root), when it has answered NVML since the agent started, or up to the count
an operator configures (`collectors.gpu.expected_gpus`, for hosts whose sysfs is not visible).
Each cycle, a GPU the agent has seen that NVML no longer lists, and a PCI slot no NVML GPU
answers for, is reported down with reason `missing`: by its old index and UUID where the agent
knew it, else by its PCI bus id.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence

from agent.hw import GpuDevice, GpuInventory, GpuReading
from agent.hw.pci import PciAddress, nvidia_gpus, sysfs_name

NO_INDEX = -1  # a GPU NVML does not list: it is named by its PCI bus id


def placeholder(index: int, pci_bus_id: str = "") -> GpuDevice:
    """A GPU whose static facts could not be read: known by its place only."""
    return GpuDevice(index=index, uuid="", model="unknown", pci_bus_id=pci_bus_id)


class Inventory:
    def __init__(self, sysfs_root: str, expected_gpus: int = 0) -> None:
        self.sysfs_root = sysfs_root
        self.expected_gpus = expected_gpus
        self._pci: set[PciAddress] = set()
        self._seen: dict[str, GpuDevice] = {}
        self._lock = threading.Lock()

    def scan(self) -> None:
        """Read the PCI bus (at start and after each NVML initialisation, not every cycle)."""
        self._pci |= set(nvidia_gpus(self.sysfs_root))

    def remember(self, device: GpuDevice) -> None:
        if device.uuid:
            with self._lock:
                self._seen[device.uuid] = device

    def slot(self, index: int, count: int) -> str:
        """The bus id of NVML index `index`, when the bus and NVML agree on how many GPUs
        there are (NVML enumerates in PCI bus order); "" when that cannot be told."""
        slots = sorted(self._pci)
        return sysfs_name(slots[index]) if len(slots) == count and index < count else ""

    def absent(self, readings: Sequence[GpuReading], reason: str) -> list[GpuReading]:
        """Down readings (with `reason`) for expected GPUs no reading this cycle stands for."""
        uuids = {r.device.uuid for r in readings}
        keys: set[Hashable] = {r.device.xid_key for r in readings}
        with self._lock:
            seen = list(self._seen.values())
        gone = [d for d in seen if d.uuid not in uuids and d.xid_key not in keys]
        out = [GpuReading(device=d, up=False, down_reason=reason) for d in gone]
        keys |= {d.xid_key for d in seen}
        out += [
            GpuReading(placeholder(NO_INDEX, sysfs_name(a)), up=False, down_reason=reason)
            for a in sorted(self._pci)
            if a not in keys
        ]
        return out

    def summary(self, readings: Sequence[GpuReading], enumerated: int) -> GpuInventory:
        with self._lock:
            known: set[Hashable] = {d.xid_key for d in self._seen.values()}
        expected = max(self.expected_gpus, len(known | self._pci), enumerated)
        return GpuInventory(expected=expected, present=sum(1 for r in readings if r.up))
