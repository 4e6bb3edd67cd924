"""The pynvml process functions of FakeNvml: running compute processes and their utilisation.

`nvmlDeviceGetComputeRunningProcesses` (pynvml's v3 wrapper) and `_v2` list the processes of
the jobs active at the simulated time (`fake_processes`), as pynvml's friendly objects of
`c_nvmlProcessInfo_v2_t` (the v3 struct is the same): `usedGpuMemory` in bytes, None where NVML
cannot tell; `gpuInstanceId`/`computeInstanceId` are the MIG instance's, else
NVML_VALUE_NOT_AVAILABLE (0xFFFFFFFF). A MIG device handle lists its own instance's processes.

`nvmlDeviceGetProcessUtilization(handle, timeStamp)` follows NVML's documentation: one sample
per process "that had some non-zero utilization during the last sample period", newer than
`timeStamp` (a CPU timestamp in microseconds); NVML_ERROR_NOT_FOUND when there is none. The
driver samples once per tick (`fake_workload.TICK`); a sample's smUtil/memUtil are the process's
mean over the ticks after `timeStamp` (at most SAMPLE_BUFFER_TICKS back), its timeStamp the
last tick it was busy. So processes of idle jobs never appear, and with `timeStamp` just before
the current tick, the samples' smUtil add up to nvmlDeviceGetUtilizationRates' gpu exactly.
Timestamps are `epoch_us` + simulated time: `epoch_us` is the wall clock at simulated time 0.
Assumed (not documented): NOT_SUPPORTED for a GPU in MIG mode, where NVML's utilisation is N/A.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.fake_calls import FakeNvmlBase, device, mig_device
from suanli_sim.fake_device import FakeGpu, fail
from suanli_sim.fake_mig_device import MigDevice
from suanli_sim.fake_models import MIB
from suanli_sim.fake_processes import SAMPLE_BUFFER_TICKS
from suanli_sim.fake_procfs import FakeProcfs
from suanli_sim.fake_scenario import Scenario
from suanli_sim.fake_workload import TICK

P = pynvml
TICK_US = int(TICK * 1_000_000)
_U64 = (1 << 64) - 1


class ProcessApi(FakeNvmlBase):
    def __init__(
        self,
        scenario: Scenario,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(scenario, clock, sleep)
        self.epoch_us = int(time.time() * 1e6) - int(self.now() * 1e6)

    def fake_procfs(self, root: str | Path) -> FakeProcfs:
        """A procfs tree under `root` for this fake's processes; call `.sync()` each cycle."""
        return FakeProcfs(self.scenario, root, self.now)

    @mig_device
    def nvmlDeviceGetComputeRunningProcesses(
        self, handle: FakeGpu, mig: MigDevice | None
    ) -> list[Any]:
        return self._running(handle, mig)

    @mig_device
    def nvmlDeviceGetComputeRunningProcesses_v2(
        self, handle: FakeGpu, mig: MigDevice | None
    ) -> list[Any]:
        return self._running(handle, mig)

    def _running(self, gpu: FakeGpu, mig: MigDevice | None) -> list[Any]:
        missing = P.NVML_VALUE_NOT_AVAILABLE_ulonglong.value
        na = P.NVML_VALUE_NOT_AVAILABLE_uint.value
        out = []
        for proc, mib, instance in gpu.processes(self.now()):
            if mig is not None and instance != mig.gpu_instance:
                continue
            ids = (na, na) if instance is None else (instance, MigDevice.compute_instance)
            info = P.c_nvmlProcessInfo_v3_t(proc.pid, missing if mib is None else mib * MIB, *ids)
            obj = P.nvmlStructToFriendlyObject(info)
            if obj.usedGpuMemory == missing:  # as pynvml does
                obj.usedGpuMemory = None
            out.append(obj)
        return out

    @device
    def nvmlDeviceGetProcessUtilization(self, handle: FakeGpu, timeStamp: int) -> list[Any]:
        if isinstance(timeStamp, bool) or not isinstance(timeStamp, int):
            raise TypeError(f"int expected instead of {type(timeStamp).__name__}")  # c_ulonglong
        if handle.spec.mig:
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        last = int(self.now() // TICK)
        first = max(0, last - SAMPLE_BUFFER_TICKS + 1, self._first_tick_after(timeStamp & _U64))
        samples = handle.jobs.samples(handle.work, first, last)
        if not samples:
            fail(P.NVML_ERROR_NOT_FOUND)
        return [
            P.c_nvmlProcessUtilizationSample_t(
                s.pid, self.epoch_us + s.tick * TICK_US, s.sm, s.mem, 0, 0
            )
            for s in samples
        ]

    def _first_tick_after(self, stamp_us: int) -> int:
        """The first tick whose sample is newer than `stamp_us`."""
        if stamp_us < self.epoch_us:
            return 0
        return (stamp_us - self.epoch_us) // TICK_US + 1
