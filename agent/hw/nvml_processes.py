"""Compute processes per GPU, with their memory and, where NVML samples it, their SM share."""

from __future__ import annotations

from typing import Any

from agent.hw import GpuProcess
from agent.hw.nvml import NVML, LibraryMismatch, NVMLError, NvmlGateway

PERCENT = 100.0


NOT_AVAILABLE = 0xFFFFFFFF  # NVML_VALUE_NOT_AVAILABLE as an unsigned int: not in MIG


def _instance(process: Any) -> int | None:
    """The process's MIG GPU instance; None outside MIG and for v1 structures without the field."""
    gi = getattr(process, "gpuInstanceId", None)
    return None if gi is None or int(gi) == NOT_AVAILABLE else int(gi)


class ProcessReader:
    """Reads each GPU's processes; remembers the last utilisation sample seen per GPU."""

    def __init__(self, gw: NvmlGateway) -> None:
        self.gw = gw
        self._last_sample_us: dict[int, int] = {}

    def read(self, index: int, handle: Any) -> list[GpuProcess] | None:
        processes = self._running(index, handle)
        if processes is None:
            return None
        shares = self._sm_shares(index, handle)
        return [
            GpuProcess(
                pid=int(p.pid),
                memory_used_bytes=None if p.usedGpuMemory is None else float(p.usedGpuMemory),
                sm_utilization_ratio=shares.get(int(p.pid)),
                gpu_instance=_instance(p),
            )
            for p in processes
        ]

    def _running(self, index: int, handle: Any) -> list[Any] | None:
        key = ("processes", index)
        try:
            found: list[Any] | None = self.gw.call_versioned(
                [
                    ("nvmlDeviceGetComputeRunningProcesses", {}),
                    ("nvmlDeviceGetComputeRunningProcesses_v2", {}),
                ],
                key,
                handle,
            )
            return found
        except NVMLError:
            return None
        except LibraryMismatch:
            # pynvml's v3 wrapper on a driver without _v3: ask the v2 call directly
            try:
                found = self.gw.call("nvmlDeviceGetComputeRunningProcesses_v2", key, handle)
            except NVMLError:
                return None
            return found

    def _sm_shares(self, index: int, handle: Any) -> dict[int, float]:
        """SM utilisation per pid from the samples newer than the last ones seen."""
        function, key = "nvmlDeviceGetProcessUtilization", ("procutil", index)
        if self.gw.is_unsupported(function, key) or not self.gw.has(function):
            return {}
        since = self._last_sample_us.get(index, 0)
        try:
            samples = getattr(self.gw.nv, function)(handle, since)
        except NVMLError as err:
            # NOT_FOUND is NVML's "no sample newer than `since`": normal, not an error
            if getattr(err, "value", None) == NVML.NVML_ERROR_NOT_SUPPORTED:
                self.gw.remember_unsupported(function, key)
            elif getattr(err, "value", None) != NVML.NVML_ERROR_NOT_FOUND:
                self.gw.count_error(function, type(err).__name__.removeprefix("NVMLError_"))
            return {}
        latest: dict[int, tuple[int, float]] = {}
        for sample in samples:
            stamp, pid = int(sample.timeStamp), int(sample.pid)
            if pid not in latest or stamp > latest[pid][0]:
                latest[pid] = (stamp, sample.smUtil / PERCENT)
            self._last_sample_us[index] = max(self._last_sample_us.get(index, 0), stamp)
        return {pid: share for pid, (_, share) in latest.items()}
