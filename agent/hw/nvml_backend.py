"""The NVML backend: device discovery, static facts cached, every GPU read on its own each cycle.

Each GPU is read by a worker thread of its own, all at once, each bounded by the same deadline:
a real driver answers some calls in milliseconds (the energy counter about 3 ms, field values
about 4 ms, PCIe throughput about 21 ms on an H200), so one GPU after another would cost the
sum, and one GPU whose calls hang would silence all of them. A GPU still being read at the
deadline is reported down (`hung`) while the others' readings are fresh; its worker gets no
new job until the hung one returns. `inline=True` reads the GPUs one after another in the
caller's thread (the fleet simulator, which runs thousands of nodes in a few threads).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.hw import GpuDevice, GpuReading, GpuSnapshot, NvmlStatus
from agent.hw.gpu_inventory import Inventory, placeholder
from agent.hw.nvml import NVMLError, NvmlGateway
from agent.hw.nvml_dynamic import read_gpu
from agent.hw.nvml_errors import GpuGone, NvmlUnavailable
from agent.hw.nvml_events import XidListener
from agent.hw.nvml_fabric import read_fabric
from agent.hw.nvml_gpm import GpmReader
from agent.hw.nvml_mig import MigReader
from agent.hw.nvml_processes import ProcessReader
from agent.hw.nvml_static import read_device
from agent.hw.xid_ledger import XidLedger
from agent.workers import Worker


@dataclass(frozen=True)
class BackendOptions:
    xid_events: bool = True
    gpm: bool = True
    xid_wait_ms: int = 500  # the listener's longest wait: how long a stop can take
    processes: bool = True
    gpu_deadline_s: float = 4.0  # a GPU not read by then is reported hung for this cycle
    inline: bool = False
    sysfs: str = "/sys"  # where the PCI bus is read, to know which GPUs to expect
    expected_gpus: int = 0


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
        ledger: XidLedger | None = None,
    ) -> None:
        self.gw = gateway
        self._clock = clock
        self._pcie_seen: dict[str, tuple[float, dict[str, float]]] = {}
        self.options = options or BackendOptions()
        self.ledger = ledger or XidLedger()
        self.xid = XidListener(
            gateway, self.ledger, wait_ms=self.options.xid_wait_ms, threaded=not self.options.inline
        )
        self.gpm = GpmReader(gateway, clock)
        self.mig = MigReader(gateway, self.gpm)
        self.processes = ProcessReader(gateway)
        self.inventory = Inventory(self.options.sysfs, self.options.expected_gpus)
        self._scanned = False
        self._generation = -1
        self._count = 0
        self._handles: dict[int, Any] = {}
        self._devices: dict[int, GpuDevice] = {}
        self._fresh: set[int] = set()  # indexes whose static facts were read since the last init
        self._workers: dict[int, Worker[GpuReading]] = {}
        self._system = NvmlStatus(up=False)

    def read(self) -> GpuSnapshot:
        """One cycle: every GPU's reading (down ones included), or NVML's status when unusable."""
        if not self._scanned:
            self.inventory.scan()
            self._scanned = True
        try:
            if not self.gw.ensure_init():
                return self._down()
            if self._generation != self.gw.generation:
                self._discover()
        except NVMLError as err:  # e.g. the device count refused: discovery is retried next cycle
            self.gw.log_once("discover", f"NVML cannot list the GPUs: {err}")
            return self._down()
        except NvmlUnavailable:
            return self._down()
        readings = self._read_all()
        if not self.gw.up:  # a reader found the library gone
            return self._down()
        self.xid.drain()
        return self._snapshot(self._system, readings)

    def _snapshot(self, status: NvmlStatus, readings: list[GpuReading]) -> GpuSnapshot:
        readings += self.inventory.absent(readings, "missing" if status.up else "nvml_down")
        enumerated = self._count if status.up else 0
        return GpuSnapshot(
            status=status,
            readings=readings,
            errors=self.gw.error_counts(),
            disabled={} if self.gw.probe is None else self.gw.probe.disabled(),
            xid=self.ledger.record(),
            inventory=self.inventory.summary(readings, enumerated),
        )

    def _down(self) -> GpuSnapshot:
        status = NvmlStatus(up=False, error=self.gw.init_error)
        down = [
            GpuReading(device=d, up=False, down_reason="nvml_down") for d in self._devices.values()
        ]
        return self._snapshot(status, down)

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
        self.inventory.scan()
        self.gpm.forget()
        self.mig.forget()
        if self.options.xid_events:
            self.xid.open()

    def _system_string(self, function: str) -> str | None:
        try:
            value = self.gw.call(function, "system")
        except NVMLError:
            return None
        return None if value is None else str(value)

    def _read_all(self) -> list[GpuReading]:
        """Every enumerated GPU's reading; a GPU past the deadline reads as hung."""
        deadline = time.monotonic() + self.options.gpu_deadline_s
        workers = [self._worker(index) for index in range(self._count)]
        for worker in workers:
            worker.submit()
        readings = []
        for index, worker in enumerate(workers):
            if not worker.wait(deadline):
                self.gw.log_once(f"gpu{index}-hung", f"GPU {index}: NVML calls are not returning")
                readings.append(self._down_reading(index, "hung"))
            elif worker.result is not None:
                readings.append(worker.result)
            elif not isinstance(worker.error, NvmlUnavailable):
                self.gw.log_once(f"gpu{index}-bug", f"GPU {index}: reading failed: {worker.error}")
                readings.append(self._down_reading(index, "error"))
        return readings

    def _worker(self, index: int) -> Worker[GpuReading]:
        worker = self._workers.get(index)
        if worker is None:
            job = functools.partial(self._read_one, index)
            worker = Worker(f"gpu-{index}", job, inline=self.options.inline)
            self._workers[index] = worker
        return worker

    def _down_reading(self, index: int, reason: str) -> GpuReading:
        known = self._devices.get(index) or placeholder(
            index, self.inventory.slot(index, self._count)
        )
        return GpuReading(device=known, up=False, down_reason=reason)

    def _read_one(self, index: int) -> GpuReading:
        """A GPU's reading, in its own worker; a GPU that fails reads as down."""
        try:
            handle = self._handle(index)
            device = self._devices.get(index)
            if device is None or index not in self._fresh:
                device = read_device(self.gw, index, handle)
                self._devices[index] = device
                self.inventory.remember(device)
                if self.options.xid_events:
                    self.xid.register(handle, device)
                self._fresh.add(index)
            reading = read_gpu(self.gw, device, handle)
            if reading.up:
                self._pcie_rates(reading)
                self._extras(reading, handle)
            else:
                reading.down_reason = "error"
            return reading
        except (GpuGone, NVMLError) as err:
            self._handles.pop(index, None)
            self.gw.log_once(f"gpu{index}", f"GPU {index} is not answering: {err}")
            return self._down_reading(index, "lost" if isinstance(err, GpuGone) else "error")

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
        """Fabric, processes, and GPM activity of the GPU or of each of its MIG instances."""
        index = reading.device.index
        read_fabric(self.gw, reading, handle)
        if self.options.processes:
            reading.processes = self.processes.read(index, handle)
        gpm = self.options.gpm and self.gpm.supported(index, handle)
        reading.gpm_supported = gpm if self.options.gpm else None
        if reading.device.mig_mode == "enabled":
            reading.mig = self.mig.read(index, handle, with_activity=gpm)
        elif gpm:
            reading.activity = self.gpm.read(index, handle)
            reading.activity_seconds = self.gpm.interval(index)

    def close(self) -> None:
        self.xid.stop()
        for worker in self._workers.values():
            worker.close()
        self.gpm.close()
        self.gw.shutdown()
