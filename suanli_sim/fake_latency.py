"""How long real NVML calls take, for scenarios that ask for it (`latency: h200`).

Medians of the agent's own calls on one real H200 (driver 580.159.04, the validation run of
2026-12-04), and of `../shared/reference/h200/nvml-call-latency-us.json` for PCIe throughput.
Most device queries are answered from the driver's cache in microseconds; the energy counter,
the violation counters, process utilisation, GPM metrics and field values cost a millisecond
or more, and registering a GPU for events half a second. A function neither timed takes
`DEFAULT_US`, the capture's "1-7 us" for cached queries (assumed). Sleeps under `MIN_SLEEP_S`
are skipped: a Python call and `time.sleep` already cost that much.
"""

from __future__ import annotations

from collections.abc import Mapping

MIN_SLEEP_S = 50e-6
DEFAULT_US = 2.0

H200_MEDIAN_US: Mapping[str, float] = {
    # the agent's own calls timed on a real H200, driver 580.159.04 (docs/hardware-validation.md,
    # benchmarks/hardware/results/2026-12-04/cycle.json): 50 cycles, or once for static facts
    "nvmlInit": 9478.4,
    "nvmlDeviceRegisterEvents": 475597.0,  # once per GPU per initialisation
    "nvmlDeviceGetSupportedEventTypes": 466.2,
    "nvmlDeviceGetMaxClockInfo": 1759.4,
    "nvmlDeviceGetTemperatureThreshold": 796.7,
    "nvmlDeviceGetPowerManagementLimitConstraints": 1485.4,
    "nvmlDeviceGetMaxPcieLinkGeneration": 1914.3,
    "nvmlDeviceGetTotalEnergyConsumption": 3194.4,
    "nvmlDeviceGetProcessUtilization": 2451.9,
    "nvmlGpmMetricsGet": 1729.0,
    "nvmlGpmSampleGet": 162.3,
    "nvmlDeviceGetViolationStatus": 760.0,  # one per policy, six a cycle
    "nvmlDeviceGetFieldValues": 808.4,  # the cycle's call of 8 fields
    "nvmlDeviceGetCurrPcieLinkWidth": 88.1,
    # not in that run's call pattern: ../shared/reference/h200/nvml-call-latency-us.json
    "nvmlDeviceGetPcieThroughput": 20952.2,  # it samples for 20 ms
}
PROFILES = {"none": None, "h200": H200_MEDIAN_US}


def call_seconds(profile: str, function: str) -> float:
    """Seconds a call of `function` takes under `profile` (0 when below MIN_SLEEP_S)."""
    table = PROFILES.get(profile)
    if table is None:
        return 0.0
    seconds = table.get(function, DEFAULT_US) / 1e6
    return seconds if seconds >= MIN_SLEEP_S else 0.0
