"""True GPU activity through NVML GPM (Hopper and newer): two samples one interval apart.

Each GPU (and each MIG GPU instance) keeps its previous sample; a cycle takes a new one, asks
NVML for the metrics between the two and frees the older. The first cycle has no previous
sample, so activity appears from the second cycle on. Unsupported devices get nothing: absent.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from agent.hw.nvml import GPM_METRICS, NVMLError, NvmlGateway

log = logging.getLogger(__name__)

PERCENT = 100.0


class GpmReader:
    def __init__(self, gw: NvmlGateway) -> None:
        self.gw = gw
        self._supported: dict[int, bool] = {}
        self._previous: dict[Hashable, Any] = {}

    def supported(self, index: int, handle: Any) -> bool:
        """Whether NVML offers GPM on this GPU; asked once per GPU and initialisation."""
        if index not in self._supported:
            try:
                answer = self.gw.call("nvmlGpmQueryDeviceSupport", ("gpm", index), handle)
            except NVMLError:
                return False
            self._supported[index] = bool(answer is not None and answer.isSupportedDevice)
        return self._supported[index]

    def read(self, index: int, handle: Any, gpu_instance: int | None = None) -> dict[str, float]:
        """Activity ratios since the previous call for this GPU or GPU instance."""
        key = (index, gpu_instance)
        sample = self._take(key, handle, gpu_instance)
        if sample is None:
            return {}
        previous = self._previous.get(key)
        self._previous[key] = sample
        if previous is None:
            return {}
        try:
            return self._metrics(key, previous, sample)
        finally:
            self._free(previous)

    def _take(self, key: Hashable, handle: Any, gpu_instance: int | None) -> Any:
        try:
            sample = self.gw.call("nvmlGpmSampleAlloc", ("gpm", key))
            if sample is None:
                return None
            if gpu_instance is None:
                self.gw.call("nvmlGpmSampleGet", ("gpm", key), handle, sample)
            else:
                self.gw.call("nvmlGpmMigSampleGet", ("gpm", key), handle, gpu_instance, sample)
        except NVMLError:
            return None
        return sample

    def _metrics(self, key: Hashable, first: Any, second: Any) -> dict[str, float]:
        nv = self.gw.nv
        request = nv.c_nvmlGpmMetricsGet_t()
        request.version = nv.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(GPM_METRICS)
        request.sample1, request.sample2 = first, second
        for slot, metric in enumerate(GPM_METRICS.values()):
            request.metrics[slot].metricId = metric
        try:
            answer = self.gw.call("nvmlGpmMetricsGet", ("gpm", key), request)
        except NVMLError:
            return {}
        if answer is None:
            return {}
        found = {}
        for slot, name in enumerate(GPM_METRICS):
            metric = answer.metrics[slot]
            if metric.nvmlReturn == nv.NVML_SUCCESS:
                found[name] = min(max(metric.value / PERCENT, 0.0), 1.0)
        return found

    def _free(self, sample: Any) -> None:
        try:
            self.gw.nv.nvmlGpmSampleFree(sample)
        except NVMLError as err:
            log.debug("nvmlGpmSampleFree: %s", err)

    def forget(self) -> None:
        """After NVML re-initialises, old samples and answers are void (and already freed)."""
        self._supported.clear()
        self._previous.clear()

    def close(self) -> None:
        for sample in self._previous.values():
            self._free(sample)
        self._previous.clear()
