"""The pynvml MIG functions of FakeNvml, and the device queries that also take MIG handles.

As NVML documents: nvmlDeviceGetMaxMigDeviceCount is 0 unless MIG is enabled ("Returns zero if
MIG is not supported or enabled"), else 7; nvmlDeviceGetMigDeviceHandleByIndex answers
InvalidArgument for an index outside that count and NotFound for a slot with no MIG device;
nvmlDeviceGetAttributes "currently only supports MIG device handles" (NOT_SUPPORTED for a GPU).
Assumed (not documented precisely): GPU/compute instance IDs of a GPU handle answer
NOT_SUPPORTED, and the parent of a GPU handle InvalidArgument. A MIG device's memory has no
driver reservation ("Reserved: 0 MiB" in every MIG capture).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.fake_calls import FakeMigHandle, FakeNvmlBase, device, mig_device
from suanli_sim.fake_device import FakeGpu, fail
from suanli_sim.fake_functions import MEMORY_V2_SYMBOL
from suanli_sim.fake_mig import MAX_MIG_DEVICES
from suanli_sim.fake_mig_device import MigDevice
from suanli_sim.fake_models import MIB
from suanli_sim.fake_scenario import Scenario

P = pynvml


class MigApi(FakeNvmlBase):
    def __init__(
        self,
        scenario: Scenario,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(scenario, clock, sleep)
        self.mig_handles = [
            [FakeMigHandle(self, gpu.index, i) for i in range(len(gpu.mig))] for gpu in self.gpus
        ]

    @staticmethod
    def _mig_only(mig: MigDevice | None) -> MigDevice:
        if mig is None:
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        return mig

    # --- identity and memory, for GPUs and MIG devices ------------------------------------
    @mig_device
    def nvmlDeviceGetName(self, handle: FakeGpu, mig: MigDevice | None) -> str:
        return handle.model.name if mig is None else mig.name

    @mig_device
    def nvmlDeviceGetUUID(self, handle: FakeGpu, mig: MigDevice | None) -> str:
        return handle.uuid if mig is None else mig.uuid

    @mig_device
    def nvmlDeviceGetMemoryInfo(
        self, handle: FakeGpu, mig: MigDevice | None, version: Any = None
    ) -> Any:
        if version and MEMORY_V2_SYMBOL in self.missing:
            fail(P.NVML_ERROR_FUNCTION_NOT_FOUND)
        if version and version != P.nvmlMemory_v2:
            fail(P.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        t = self.now()
        if mig is None:
            model = handle.model
            total, reserved = model.memory_total_mib * MIB, model.memory_reserved_mib * MIB
            used = handle.memory_used_mib(t) * MIB
        else:
            total, reserved, used = mig.profile.memory_mib * MIB, 0, mig.memory_used_mib(t) * MIB
        free = total - reserved - used
        if not version:  # v1 counts the driver's reservation as used
            return P.c_nvmlMemory_t(total, free, used + reserved)
        return P.c_nvmlMemory_v2_t(version, total, reserved, free, used)

    # --- MIG ------------------------------------------------------------------------------
    @device
    def nvmlDeviceGetMaxMigDeviceCount(self, device: FakeGpu) -> int:
        return MAX_MIG_DEVICES if device.mig else 0

    @device
    def nvmlDeviceGetMigDeviceHandleByIndex(self, device: FakeGpu, index: int) -> Any:
        limit = MAX_MIG_DEVICES if device.mig else 0
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < limit:
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        if index >= len(device.mig):
            fail(P.NVML_ERROR_NOT_FOUND)
        return self.mig_handles[device.index][index]

    @mig_device
    def nvmlDeviceIsMigDeviceHandle(self, device: FakeGpu, mig: MigDevice | None) -> Any:
        return P.c_uint(int(mig is not None))  # pynvml returns the c_uint itself

    @mig_device
    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
        self, migDevice: FakeGpu, mig: MigDevice | None
    ) -> Any:
        if mig is None:
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        return self.handles[migDevice.index]

    @mig_device
    def nvmlDeviceGetGpuInstanceId(self, device: FakeGpu, mig: MigDevice | None) -> int:
        return self._mig_only(mig).gpu_instance

    @mig_device
    def nvmlDeviceGetComputeInstanceId(self, device: FakeGpu, mig: MigDevice | None) -> int:
        return self._mig_only(mig).compute_instance

    @mig_device
    def nvmlDeviceGetAttributes_v2(self, device: FakeGpu, mig: MigDevice | None) -> Any:
        return self._mig_only(mig).attributes()

    @mig_device
    def nvmlDeviceGetAttributes(self, device: FakeGpu, mig: MigDevice | None) -> Any:
        return self._mig_only(mig).attributes()
