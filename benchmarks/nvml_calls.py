"""The NVML functions a benchmark tells apart: static facts read once, the event thread's waits."""

from __future__ import annotations

from collections.abc import Mapping

# Facts that never change while NVML stays initialised, and one-time set-up: called in the first
# cycle, never again.
STATIC_FUNCTIONS = frozenset(
    {
        "nvmlDeviceGetCount",
        "nvmlDeviceGetHandleByIndex",
        "nvmlSystemGetDriverVersion",
        "nvmlSystemGetNVMLVersion",
        "nvmlSystemGetCudaDriverVersion",
        "nvmlSystemGetCudaDriverVersion_v2",
        "nvmlDeviceGetName",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetSerial",
        "nvmlDeviceGetPciInfo",
        "nvmlDeviceGetPciInfo_v3",
        "nvmlDeviceGetVbiosVersion",
        "nvmlDeviceGetArchitecture",
        "nvmlDeviceGetMaxClockInfo",
        "nvmlDeviceGetMaxPcieLinkGeneration",
        "nvmlDeviceGetMaxPcieLinkWidth",
        "nvmlDeviceGetTemperatureThreshold",
        "nvmlDeviceGetPowerManagementDefaultLimit",
        "nvmlDeviceGetPowerManagementLimitConstraints",
        "nvmlDeviceGetComputeMode",
        "nvmlDeviceGetMigMode",
        "nvmlDeviceGetSupportedEventTypes",
        "nvmlDeviceRegisterEvents",
        "nvmlEventSetCreate",
        "nvmlGpmQueryDeviceSupport",
    }
)
# Called by the agent's own background thread (XID events), on its clock, not the sampler's.
BACKGROUND_FUNCTIONS = frozenset({"nvmlEventSetWait", "nvmlEventSetWait_v2"})

# The agent re-enumerates each GPU's MIG devices every 12 cycles (`MigReader.rescan_cycles`: a
# layout can change without NVML re-initialising); each device found reads its UUID and name,
# on a MIG handle. FakeNvml counts by function only, so those are taken out of the static count.
MIG_RESCAN = "nvmlDeviceGetMigDeviceHandleByIndex"
MIG_RESCAN_READS = ("nvmlDeviceGetUUID", "nvmlDeviceGetName")


def static_rereads(steady: Mapping[str, float]) -> float:
    """Static-fact calls per later cycle on whole GPUs (MIG rescans left out): must be 0."""
    found = sum(v for k, v in steady.items() if k in STATIC_FUNCTIONS)
    rescans = steady.get(MIG_RESCAN, 0.0)
    return found - sum(min(rescans, steady.get(name, 0.0)) for name in MIG_RESCAN_READS)


def foreground(calls: Mapping[str, float]) -> float:
    """Calls made by the sampler or a render, leaving out the event thread's waits."""
    return sum(n for name, n in calls.items() if name not in BACKGROUND_FUNCTIONS)
