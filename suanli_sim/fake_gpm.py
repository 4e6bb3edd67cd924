"""GPM (GPU Performance Monitoring, Hopper and newer) for the fake NVML.

A sample records its device (a GPU, or a MIG GPU instance through nvmlGpmMigSampleGet), the
simulated time and the cumulative activity integrals then (`fake_activity`); nvmlGpmMetricsGet
answers each metric as the percentage of the time between two samples its unit was active: the
exact mean of the workload's activity, which `expected_activity` gives tests as ground truth.
Two samples at the same simulated time give the activity at that time.

Support follows NVML: nvmlGpmQueryDeviceSupport answers isSupportedDevice 0 (no error) on
pre-Hopper GPUs, whose samples answer NOT_SUPPORTED. A MIG-enabled GPU's own samples average its
instances (weighted by SMs; DRAM by memory share).
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.fake_activity import METRICS, SLOT, Activity, CombinedActivity, Vector, average
from suanli_sim.fake_calls import FakeNvmlBase, device, system
from suanli_sim.fake_device import FakeGpu, fail
from suanli_sim.fake_scenario import Scenario

P = pynvml


@dataclass(frozen=True)
class Taken:
    """What nvmlGpmSampleGet / nvmlGpmMigSampleGet stored in a sample."""

    gpu: int
    gpu_instance: int | None
    t: float
    integrals: Vector


class GpmApi(FakeNvmlBase):
    """The pynvml GPM functions of FakeNvml, and `expected_activity` for tests."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(scenario, clock, sleep)
        self.gpm_samples: dict[int, tuple[Any, Taken | None]] = {}

    @staticmethod
    def gpm_supported(gpu: FakeGpu) -> bool:
        return bool(gpu.model.architecture >= P.NVML_DEVICE_ARCH_HOPPER)

    def activity_of(self, gpu: FakeGpu, gpu_instance: int | None) -> Activity | CombinedActivity:
        """The activity of a GPU, or of one of its GPU instances (NOT_FOUND if none)."""
        if gpu_instance is None:
            return gpu.activity
        for mig in gpu.mig:
            if mig.gpu_instance == gpu_instance:
                return mig.activity
        fail(P.NVML_ERROR_NOT_FOUND)

    def expected_activity(
        self,
        gpu_index: int,
        metric: str | int,
        t1: float,
        t2: float,
        gpu_instance: int | None = None,
    ) -> float:
        """Ground truth for tests: the mean of a GPM metric (name as in fake_activity.METRICS,
        e.g. "sm_util", or its NVML_GPM_METRIC_* id) over [t1, t2], as a ratio 0..1."""
        name = METRICS[metric] if isinstance(metric, int) else metric
        with self.lock:
            source = self.activity_of(self.gpus[gpu_index], gpu_instance)
            values = average(source, t1, source.integral(t1), t2, source.integral(t2))
        return values[SLOT[name]]

    def _key(self, sample: Any) -> int:
        try:
            key = ctypes.addressof(sample.contents)
        except (AttributeError, TypeError, ValueError):
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        if key not in self.gpm_samples:
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        return key

    def _take(self, gpu: FakeGpu, gpu_instance: int | None, sample: Any) -> Any:
        if not self.gpm_supported(gpu):
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        key = self._key(sample)
        if gpu_instance is not None and not gpu.mig:
            fail(P.NVML_ERROR_NOT_SUPPORTED)  # assumed: no GPU instances without MIG mode
        t = self.now()
        integrals = self.activity_of(gpu, gpu_instance).integral(t)
        self.gpm_samples[key] = (sample, Taken(gpu.index, gpu_instance, t, integrals))
        return sample

    @device
    def nvmlGpmQueryDeviceSupport(self, device: FakeGpu) -> Any:
        return P.c_nvmlGpmSupport_t(P.NVML_GPM_SUPPORT_VERSION, int(self.gpm_supported(device)))

    @system
    def nvmlGpmSampleAlloc(self) -> Any:
        sample = ctypes.pointer(P.struct_c_nvmlGpmSample_t())
        self.gpm_samples[ctypes.addressof(sample.contents)] = (sample, None)
        return sample

    @system
    def nvmlGpmSampleFree(self, gpmSample: Any) -> None:
        del self.gpm_samples[self._key(gpmSample)]

    @device
    def nvmlGpmSampleGet(self, device: FakeGpu, gpmSample: Any) -> Any:
        return self._take(device, None, gpmSample)

    @device
    def nvmlGpmMigSampleGet(self, device: FakeGpu, gpuInstanceId: int, gpmSample: Any) -> Any:
        return self._take(device, int(gpuInstanceId), gpmSample)

    @system
    def nvmlGpmMetricsGet(self, metricsGet: Any) -> Any:
        if not isinstance(metricsGet, P.c_nvmlGpmMetricsGet_t):
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        if metricsGet.version != P.NVML_GPM_METRICS_GET_VERSION:
            fail(P.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        if not 0 <= metricsGet.numMetrics <= len(metricsGet.metrics):
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        first = self.gpm_samples[self._key(metricsGet.sample1)][1]
        second = self.gpm_samples[self._key(metricsGet.sample2)][1]
        if first is None or second is None or first.t > second.t:
            fail(P.NVML_ERROR_INVALID_ARGUMENT)  # unfilled, or in the wrong order
        if (first.gpu, first.gpu_instance) != (second.gpu, second.gpu_instance):
            fail(P.NVML_ERROR_INVALID_ARGUMENT)  # from different devices
        source = self.activity_of(self.gpus[first.gpu], first.gpu_instance)
        values = average(source, first.t, first.integrals, second.t, second.integrals)
        for i in range(metricsGet.numMetrics):
            metric = metricsGet.metrics[i]
            name = METRICS.get(metric.metricId)
            metric.value = 0.0 if name is None else 100.0 * values[SLOT[name]]
            metric.nvmlReturn = P.NVML_ERROR_NOT_SUPPORTED if name is None else P.NVML_SUCCESS
        return metricsGet
