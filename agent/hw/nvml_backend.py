"""The NVML backend: device discovery, static facts cached, one reading of every GPU per cycle."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.hw import GpuDevice, GpuReading, GpuSnapshot, NvmlStatus
from agent.hw.nvml import GpuGone, NVMLError, NvmlGateway, NvmlUnavailable
from agent.hw.nvml_dynamic import read_gpu
from agent.hw.nvml_events import XidListener
from agent.hw.nvml_gpm import GpmReader
from agent.hw.nvml_mig import MigReader
from agent.hw.nvml_processes import ProcessReader
from agent.hw.nvml_static import read_device


@dataclass(frozen=True)
class BackendOptions:
    xid_events: bool = True
    gpm: bool = True
    xid_wait_ms: int = 500  # the listener's longest wait: how long a stop can take
    processes: bool = True


log = logging.getLogger(__name__)


def _cuda_version(raw: Any) -> str | None:
    """12040 -> "12.4", as nvidia-smi prints it."""
    if raw is None:
        return None
    value = int(raw)
    return f"{value // 1000}.{value % 1000 // 10}"


class NvmlBackend:
    """Reads all GPUs through an `NvmlGateway`. Static facts are read once per initialisation."""

    def __init__(
        self,
        gateway: NvmlGateway,
        options: BackendOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gw = gateway
        self._clock = clock
        self._pcie_seen: dict[str, tuple[float, dict[str, float]]] = {}
        self.options = options or BackendOptions()
        self.xid = XidListener(gateway, wait_ms=self.options.xid_wait_ms)
        self.gpm = GpmReader(gateway)
        self.mig = MigReader(gateway, self.gpm)
        self.processes = ProcessReader(gateway)
        self._generation = -1
        self._count = 0
        self._handles: dict[int, Any] = {}
        self._devices: dict[int, GpuDevice] = {}
        self._fresh: set[int] = set()  # indexes whose static facts were read since the last init
        self._system = NvmlStatus(up=False)

    def read(self) -> GpuSnapshot:
        """One cycle: every known GPU's reading, or NVML's status when it is unusable."""
        try:
            if not self.gw.ensure_init():
                return self._down()
            if self._generation != self.gw.generation:
                self._discover()
            readings = [self._read_one(index) for index in range(self._count)]
        except NVMLError as err:  # e.g. the device count refused: discovery is retried next cycle
            self.gw.log_once("discover", f"NVML cannot list the GPUs: {err}")
            return self._down()
        except NvmlUnavailable:
            return self._down()
        return GpuSnapshot(
            status=self._system,
            readings=[r for r in readings if r is not None],
            errors=self.gw.error_counts(),
            xid=self.xid.record(),
        )

    def _down(self) -> GpuSnapshot:
        status = NvmlStatus(up=False, error=self.gw.init_error)
        lost = [GpuReading(device=d, up=False) for d in self._devices.values()]
        return GpuSnapshot(
            status=status, readings=lost, errors=self.gw.error_counts(), xid=self.xid.record()
        )

    def _discover(self) -> None:
        gw = self.gw
        self._handles.clear()
        self._fresh.clear()
        self._count = int(gw.call("nvmlDeviceGetCount", "system"))
        self._system = NvmlStatus(
            up=True,
            driver_version=self._system_string("nvmlSystemGetDriverVersion"),
            nvml_version=self._system_string("nvmlSystemGetNVMLVersion"),
            cuda_driver_version=_cuda_version(
                gw.call_versioned(
                    [
                        ("nvmlSystemGetCudaDriverVersion_v2", {}),
                        ("nvmlSystemGetCudaDriverVersion", {}),
                    ],
                    "system",
                )
            ),
        )
        self._generation = gw.generation
        log.info("NVML sees %d GPU(s), driver %s", self._count, self._system.driver_version)
        self.gpm.forget()
        self.mig.forget()
        if self.options.xid_events:
            self.xid.start(self._all_handles())

    def _all_handles(self) -> dict[int, Any]:
        handles = {}
        for index in range(self._count):
            try:
                handles[index] = self._handle(index)
            except (GpuGone, NVMLError):
                continue
        return handles

    def _system_string(self, function: str) -> str | None:
        try:
            value = self.gw.call(function, "system")
        except NVMLError:
            return None
        return None if value is None else str(value)

    def _read_one(self, index: int) -> GpuReading | None:
        """A GPU's reading; a GPU never seen answering is skipped, a known one reads as down."""
        try:
            handle = self._handle(index)
            device = self._devices.get(index)
            if device is None or index not in self._fresh:
                device = read_device(self.gw, index, handle)
                self._devices[index] = device
                self._fresh.add(index)
            reading = read_gpu(self.gw, device, handle)
            if reading.up:
                self._pcie_rates(reading)
                self._extras(reading, handle)
            return reading
        except (GpuGone, NVMLError) as err:
            self._handles.pop(index, None)
            known = self._devices.get(index)
            self.gw.log_once(f"gpu{index}", f"GPU {index} is not answering: {err}")
            return None if known is None else GpuReading(device=known, up=False)

    def _handle(self, index: int) -> Any:
        handle = self._handles.get(index)
        if handle is None:
            handle = self.gw.call("nvmlDeviceGetHandleByIndex", ("gpu", index), index)
            self._handles[index] = handle
        return handle

    def _pcie_rates(self, reading: GpuReading) -> None:
        """PCIe throughput as the mean over the interval, from NVML's cumulative byte counters."""
        if not reading.pcie_bytes:
            return
        now, counts = self._clock(), dict(reading.pcie_bytes)
        before = self._pcie_seen.get(reading.device.uuid)
        self._pcie_seen[reading.device.uuid] = (now, counts)
        if before is None or now <= before[0]:
            return
        for direction, total in counts.items():
            previous = before[1].get(direction)
            if previous is not None and total >= previous:
                rate = (total - previous) / (now - before[0])
                reading.pcie_throughput_bytes_per_second[direction] = rate

    def _extras(self, reading: GpuReading, handle: Any) -> None:
        """GPM activity of the whole GPU, or per MIG instance when the GPU is in MIG mode."""
        index = reading.device.index
        if self.options.processes:
            reading.processes = self.processes.read(index, handle)
        gpm = self.options.gpm and self.gpm.supported(index, handle)
        if reading.device.mig_mode == "enabled":
            reading.mig = self.mig.read(index, handle, with_activity=gpm)
        elif gpm:
            reading.activity = self.gpm.read(index, handle)

    def close(self) -> None:
        self.xid.stop()
        self.gpm.close()
        self.gw.shutdown()
