"""True GPU activity through NVML GPM (Hopper and newer): two samples one interval apart.

Each GPU (and each MIG GPU instance) keeps its previous sample; a cycle takes a new one, asks
NVML for the metrics between the two and frees the older. The first cycle has no previous
sample, so activity appears from the second cycle on. Unsupported devices get nothing: absent.
`interval` is the time the last answer covers, by the backend's clock when each sample was taken
(what turns activity into delivered work, `agent.collectors.delivered`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

from agent.hw.nvml import GPM_METRICS, NVMLError, NvmlGateway

log = logging.getLogger(__name__)

PERCENT = 100.0


class GpmReader:
    def __init__(self, gw: NvmlGateway, clock: Callable[[], float] = time.monotonic) -> None:
        self.gw = gw
        self._clock = clock
        self._supported: dict[int, bool] = {}
        self._previous: dict[Hashable, tuple[Any, float]] = {}
        self._interval: dict[Hashable, float] = {}

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
        self._interval.pop(key, None)
        sample = self._take(key, handle, gpu_instance)
        if sample is None:
            return {}
        now = self._clock()
        previous = self._previous.get(key)
        self._previous[key] = (sample, now)
        if previous is None:
            return {}
        try:
            found = self._metrics(key, previous[0], sample)
        finally:
            self._free(previous[0])
        if found and now > previous[1]:
            self._interval[key] = now - previous[1]
        return found

    def interval(self, index: int, gpu_instance: int | None = None) -> float | None:
        """Seconds between the two samples of this cycle's answer; None without an answer."""
        return self._interval.get((index, gpu_instance))

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
        self._interval.clear()

    def close(self) -> None:
        for sample, _ in self._previous.values():
            self._free(sample)
        self._previous.clear()
