"""A pynvml-shaped fake NVML driven by a scenario: the stand-in for `pynvml` in tests and `--fake`.

`FakeNvml(scenario, clock=None, sleep=time.sleep)` offers the pynvml functions listed in
`fake_functions.FUNCTIONS` with the same names, parameters, return shapes (pynvml's own ctypes
structs, lists and tuples), units (mW, mJ, bytes, MHz, %, KB/s, ns) and `NVMLError_*` classes.
Events (XID) live in `fake_events`, GPM in `fake_gpm`, MIG in `fake_mig_api`, processes and
their utilisation in `fake_process_api` (jobs: `fake_jobs`; their procfs: `fake_procfs`, also
as `FakeNvml.fake_procfs(root)`), PCIe traffic, ECC, row remapping, fabric, NVLink and field
values in `fake_reliability_api`; tests get GPM's ground truth from `FakeNvml.expected_activity`.
Every other pynvml attribute that is not a function (constants, error and struct classes) is
forwarded to the real module; pynvml functions it does not implement raise AttributeError, so
nothing ever reaches a real driver. Simulated time is `clock()` (default: seconds since creation).
"""

from __future__ import annotations

from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.fake_calls import FakeHandle, FakeMigHandle, device, system
from suanli_sim.fake_device import ENCODER_SAMPLING_US, FakeGpu, fail
from suanli_sim.fake_events import EventsApi, FakeEventData
from suanli_sim.fake_gpm import GpmApi
from suanli_sim.fake_mig_api import MigApi
from suanli_sim.fake_process_api import ProcessApi
from suanli_sim.fake_reliability_api import ReliabilityApi

P = pynvml
MIB = 1024 * 1024
# nvidia-smi -q "BAR1 Memory Usage / Total", MiB: H100-SXM5-80GB-x8__565.57.01, H800-SXM5-80GB__
# 525.105.17, h200/nvidia-smi-q__H200-141GB__580.159.04, A100-SXM4-80GB-x4__555.42.02,
# L40S__550.127.05, RTX-4090-x8__550.127.05 (256 MiB: GeForce without resizable BAR)
BAR1_TOTAL_MIB = {
    "H100-SXM5-80GB": 131072,
    "H800-SXM5-80GB": 131072,
    "H200-SXM-141GB": 262144,
    "A100-SXM4-80GB": 131072,
    "L40S": 65536,
    "RTX-4090": 256,
}

__all__ = ["FakeEventData", "FakeHandle", "FakeMigHandle", "FakeNvml"]


class FakeNvml(EventsApi, GpmApi, MigApi, ProcessApi, ReliabilityApi):
    """Stands in for the `pynvml` module. `calls` counts calls per function name."""

    # --- library and system ---------------------------------------------------------------
    def nvmlInit(self) -> None:
        with self.lock:
            self.calls["nvmlInit"] += 1
            t = self.now()
        self.maybe_slow("nvmlInit", t, None)
        if any(f.active(t) for f in self.scenario.faults_of("nvml_absent")):
            fail(P.NVML_ERROR_LIBRARY_NOT_FOUND)
        if any(f.active(t) for f in self.scenario.faults_of("driver_not_loaded")):
            fail(P.NVML_ERROR_DRIVER_NOT_LOADED)
        with self.lock:
            self._refcount += 1

    @system
    def nvmlShutdown(self) -> None:
        self._refcount -= 1
        if self._refcount == 0:
            self.event_hub.close()

    @system
    def nvmlSystemGetDriverVersion(self) -> str:
        return self.scenario.driver_version

    @system
    def nvmlSystemGetNVMLVersion(self) -> str:
        return self.scenario.nvml_version

    @system
    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.scenario.cuda_driver_version

    @system
    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return self.scenario.cuda_driver_version

    @system
    def nvmlDeviceGetCount(self) -> int:
        return len(self.enumerated)

    @system
    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        if not isinstance(index, int) or not 0 <= index < len(self.enumerated):
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        gpu = self.enumerated[index]
        if self.gpus[gpu].active("gpu_lost", self.now()):  # documented for this call
            fail(P.NVML_ERROR_GPU_IS_LOST)
        return self.handles[gpu]

    # --- identity -------------------------------------------------------------------------
    @device
    def nvmlDeviceGetSerial(self, handle: FakeGpu) -> str:
        if not handle.model.serial:  # GeForce: "Serial Number: N/A"
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        return handle.serial

    @device
    def nvmlDeviceGetPciInfo(self, handle: FakeGpu) -> Any:
        return handle.pci_info()

    @device
    def nvmlDeviceGetPciInfo_v3(self, handle: FakeGpu) -> Any:
        return handle.pci_info()

    @device
    def nvmlDeviceGetVbiosVersion(self, handle: FakeGpu) -> str:
        return handle.model.vbios

    @device
    def nvmlDeviceGetArchitecture(self, device: FakeGpu) -> int:
        return device.model.architecture

    @device
    def nvmlDeviceGetCudaComputeCapability(self, handle: FakeGpu) -> tuple[int, int]:
        return handle.model.compute_capability

    @device
    def nvmlDeviceGetComputeMode(self, handle: FakeGpu) -> int:
        return int(P.NVML_COMPUTEMODE_DEFAULT)

    @device
    def nvmlDeviceGetMigMode(self, device: FakeGpu) -> list[int]:
        if not device.model.mig_capable:  # "MIG Mode: N/A"
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        mode = P.NVML_DEVICE_MIG_ENABLE if device.spec.mig else P.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    # --- clocks, PCIe, thermal, power -----------------------------------------------------
    @device
    def nvmlDeviceGetMaxClockInfo(self, handle: FakeGpu, type: int) -> int:
        return handle.clock(self.now(), type, maximum=True)

    @device
    def nvmlDeviceGetClockInfo(self, handle: FakeGpu, type: int) -> int:
        return handle.clock(self.now(), type, maximum=False)

    @device
    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: FakeGpu) -> int:
        return handle.model.pcie[0]

    @device
    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: FakeGpu) -> int:
        return handle.model.pcie[1]

    @device
    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: FakeGpu) -> int:
        return handle.pcie_link(self.now(), width=False)

    @device
    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: FakeGpu) -> int:
        return handle.pcie_link(self.now(), width=True)

    @device
    def nvmlDeviceGetTemperature(self, handle: FakeGpu, sensor: int) -> int:
        if sensor != P.NVML_TEMPERATURE_GPU:
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        return handle.temperature(self.now())

    @device
    def nvmlDeviceGetTemperatureThreshold(self, handle: FakeGpu, threshold: int) -> int:
        return handle.threshold(threshold)

    @device
    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: FakeGpu) -> int:
        return handle.model.power_w[0] * 1000

    @device
    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: FakeGpu) -> list[int]:
        return [handle.model.power_w[1] * 1000, handle.model.power_w[2] * 1000]

    @device
    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeGpu) -> int:
        return handle.limit_w * 1000

    @device
    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
        return int(handle.tick(self.now()).power_w * 1000)

    @device
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeGpu) -> int:
        return handle.energy_mj(self.now())

    @device
    def nvmlDeviceGetFanSpeed(self, handle: FakeGpu) -> int:
        return handle.fan(self.now())

    @device
    def nvmlDeviceGetPerformanceState(self, handle: FakeGpu) -> int:
        return handle.model.pstates[int(handle.busy(self.now()))]

    @device
    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: FakeGpu) -> int:
        return handle.reasons(self.now())

    @device
    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: FakeGpu) -> int:
        return handle.reasons(self.now())

    @device
    def nvmlDeviceGetViolationStatus(self, device: FakeGpu, perfPolicyType: int) -> Any:
        t = self.now()
        return P.c_nvmlViolationTime_t(int(t * 1e6), device.violation_ns(t, perfPolicyType))

    # --- utilisation and memory -----------------------------------------------------------
    @device
    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu) -> Any:
        if handle.spec.mig:  # "Utilization: N/A" in the MIG captures
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        tick = handle.tick(self.now())
        return P.c_nvmlUtilization_t(tick.util, tick.mem_util)

    @device
    def nvmlDeviceGetEncoderUtilization(self, handle: FakeGpu) -> list[int]:
        if handle.spec.mig:
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        return [0, ENCODER_SAMPLING_US]

    @device
    def nvmlDeviceGetDecoderUtilization(self, handle: FakeGpu) -> list[int]:
        if handle.spec.mig:
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        return [0, ENCODER_SAMPLING_US]

    @device
    def nvmlDeviceGetBAR1MemoryInfo(self, handle: FakeGpu) -> Any:
        """Used is the framebuffer in use + 1 MiB, as in the H100, H200 and L40S load captures
        (19818 -> 19819, 32362 -> 32363 MiB); a model with no captured BAR1 answers
        NOT_SUPPORTED."""
        total = BAR1_TOTAL_MIB.get(handle.model.key)
        if total is None:
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        used = min(total, handle.memory_used_mib(self.now()) + 1)
        return P.c_nvmlBAR1Memory_t(total * MIB, (total - used) * MIB, used * MIB)
