"""How long real NVML calls take, for scenarios that ask for it (`latency: h200`).

Medians of 200 calls each on one real H200 (driver 580.159.04), from
`../shared/reference/h200/nvml-call-latency-us.json`. Most device queries are answered from the
driver's cache in microseconds; the energy counter, field values and PCIe throughput (which
samples for 20 ms) cost milliseconds. A function the capture did not time takes `DEFAULT_US`,
the capture's "1-7 us" for cached queries (assumed). Sleeps under `MIN_SLEEP_S` are skipped:
a Python call and `time.sleep` already cost that much.
"""

from __future__ import annotations

from collections.abc import Mapping

MIN_SLEEP_S = 50e-6
DEFAULT_US = 2.0

H200_MEDIAN_US: Mapping[str, float] = {
    "nvmlDeviceGetPowerUsage": 1.5,
    "nvmlDeviceGetTotalEnergyConsumption": 2850.6,
    "nvmlDeviceGetTemperature": 1.7,
    "nvmlDeviceGetUtilizationRates": 1.4,
    "nvmlDeviceGetMemoryInfo": 6.7,
    "nvmlDeviceGetClockInfo": 1.8,
    "nvmlDeviceGetPcieThroughput": 20952.2,
    "nvmlDeviceGetComputeRunningProcesses": 6.4,
    "nvmlDeviceGetComputeRunningProcesses_v2": 6.4,
    "nvmlDeviceGetCurrentClocksEventReasons": 1.0,
    "nvmlDeviceGetRemappedRows": 1.7,
    "nvmlDeviceGetTotalEccErrors": 1.7,
    "nvmlDeviceGetNvLinkState": 7.5,
    "nvmlDeviceGetFieldValues": 3869.7,  # one call of 8 fields
    "nvmlDeviceGetHandleByIndex": 1.0,
}
PROFILES = {"none": None, "h200": H200_MEDIAN_US}


def call_seconds(profile: str, function: str) -> float:
    """Seconds a call of `function` takes under `profile` (0 when below MIN_SLEEP_S)."""
    table = PROFILES.get(profile)
    if table is None:
        return 0.0
    seconds = table.get(function, DEFAULT_US) / 1e6
    return seconds if seconds >= MIN_SLEEP_S else 0.0
