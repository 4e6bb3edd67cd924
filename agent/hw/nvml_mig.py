"""MIG instances of a GPU in MIG mode: found once, then their memory and GPM activity each cycle.

The layout is looked up again every `rescan_cycles` cycles, so an operator's reconfiguration
shows up without a restart while a steady node does not pay for the enumeration every cycle.
"""

from __future__ import annotations

import math
from typing import Any

from agent.hw import MigInstance, MigReading
from agent.hw.nvml import NVMLError, NvmlGateway
from agent.hw.nvml_gpm import GpmReader


def profile_name(name: str | None, attributes: Any) -> str:
    """The profile, e.g. `3g.40gb`: from the MIG device's name ("NVIDIA H100 80GB HBM3 MIG
    3g.40gb"), which carries NVIDIA's nominal size; else estimated from its attributes."""
    if name and " MIG " in name:
        return name.split(" MIG ", 1)[1].strip()
    if attributes is None:
        return ""
    slices = int(attributes.gpuInstanceSliceCount)
    compute = int(attributes.computeInstanceSliceCount)
    memory_gb = math.ceil(int(attributes.memorySizeMB) / 1024)
    prefix = f"{compute}c." if compute and compute != slices else ""
    return f"{prefix}{slices}g.{memory_gb}gb"


class MigReader:
    def __init__(self, gw: NvmlGateway, gpm: GpmReader, rescan_cycles: int = 12) -> None:
        self.gw = gw
        self.gpm = gpm
        self.rescan_cycles = rescan_cycles
        self._layouts: dict[int, list[tuple[MigInstance, Any]]] = {}
        self._age: dict[int, int] = {}

    def read(self, index: int, handle: Any, with_activity: bool) -> list[MigReading]:
        readings = []
        activity_by_gi: dict[int, dict[str, float]] = {}
        for instance, mig_handle in self._layout(index, handle):
            reading = MigReading(instance)
            self._memory(reading, index, mig_handle)
            if with_activity:
                gi = instance.gpu_instance
                if gi not in activity_by_gi:
                    activity_by_gi[gi] = self.gpm.read(index, handle, gi)
                reading.activity = activity_by_gi[gi]
            readings.append(reading)
        return readings

    def _layout(self, index: int, handle: Any) -> list[tuple[MigInstance, Any]]:
        age = self._age.get(index, self.rescan_cycles)
        if age >= self.rescan_cycles:
            self._layouts[index] = self._enumerate(index, handle)
            age = 0
        self._age[index] = age + 1
        return self._layouts[index]

    def _enumerate(self, index: int, handle: Any) -> list[tuple[MigInstance, Any]]:
        key = ("mig", index)
        try:
            slots = self.gw.call("nvmlDeviceGetMaxMigDeviceCount", key, handle) or 0
        except NVMLError:
            return []
        found = []
        for slot in range(int(slots)):
            try:
                mig_handle = self.gw.nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            except NVMLError:
                continue  # NOT_FOUND: no instance in this slot
            instance = self._describe(key, mig_handle)
            if instance is not None:
                found.append((instance, mig_handle))
        return found

    def _describe(self, key: tuple[str, int], mig_handle: Any) -> MigInstance | None:
        try:
            gi = self.gw.call("nvmlDeviceGetGpuInstanceId", key, mig_handle)
            ci = self.gw.call("nvmlDeviceGetComputeInstanceId", key, mig_handle)
            uuid = self.gw.call("nvmlDeviceGetUUID", key, mig_handle)
            name = self.gw.call("nvmlDeviceGetName", key, mig_handle)
        except NVMLError:
            return None
        if gi is None or ci is None or uuid is None:
            return None
        try:
            attributes = self.gw.call("nvmlDeviceGetAttributes", key, mig_handle)
        except NVMLError:
            attributes = None  # the instance stays; its SM count is unknown
        sms = None if attributes is None else int(attributes.multiprocessorCount)
        return MigInstance(int(gi), int(ci), str(uuid), profile_name(name, attributes), sms)

    def _memory(self, reading: MigReading, index: int, mig_handle: Any) -> None:
        try:
            memory = self.gw.call("nvmlDeviceGetMemoryInfo", ("mig-memory", index), mig_handle)
        except NVMLError:
            return
        if memory is not None:
            reading.memory_used_bytes = float(memory.used)
            reading.memory_total_bytes = float(memory.total)

    def forget(self) -> None:
        self._layouts.clear()
        self._age.clear()
