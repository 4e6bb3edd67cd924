"""NVML's enumerations the agent reads, by the label values of the metric contract.

Each table maps a label value to the `nvml.h` name of its constant; `agent/hw/nvml.py` (the one
module that imports pynvml) looks the names up in the installed binding and hands out the numbers.
"""

from __future__ import annotations

CLOCKS = {
    "sm": "NVML_CLOCK_SM",
    "memory": "NVML_CLOCK_MEM",
    "graphics": "NVML_CLOCK_GRAPHICS",
    "video": "NVML_CLOCK_VIDEO",
}
THRESHOLDS = {
    "slowdown": "NVML_TEMPERATURE_THRESHOLD_SLOWDOWN",
    "shutdown": "NVML_TEMPERATURE_THRESHOLD_SHUTDOWN",
    "gpu_max": "NVML_TEMPERATURE_THRESHOLD_GPU_MAX",
    "memory_max": "NVML_TEMPERATURE_THRESHOLD_MEM_MAX",
}
CLOCK_EVENT_REASONS = {
    "idle": "nvmlClocksEventReasonGpuIdle",
    "applications_clocks": "nvmlClocksEventReasonApplicationsClocksSetting",
    "sw_power_cap": "nvmlClocksEventReasonSwPowerCap",
    "hw_slowdown": "nvmlClocksEventReasonHwSlowdown",
    "sync_boost": "nvmlClocksEventReasonSyncBoost",
    "sw_thermal": "nvmlClocksEventReasonSwThermalSlowdown",
    "hw_thermal": "nvmlClocksEventReasonHwThermalSlowdown",
    "hw_power_brake": "nvmlClocksEventReasonHwPowerBrakeSlowdown",
    "display_clocks": "nvmlClocksEventReasonDisplayClockSetting",
}
VIOLATION_POLICIES = {
    "power": "NVML_PERF_POLICY_POWER",
    "thermal": "NVML_PERF_POLICY_THERMAL",
    "sync_boost": "NVML_PERF_POLICY_SYNC_BOOST",
    "board_limit": "NVML_PERF_POLICY_BOARD_LIMIT",
    "low_utilization": "NVML_PERF_POLICY_LOW_UTILIZATION",
    "reliability": "NVML_PERF_POLICY_RELIABILITY",
}
# GPM metrics (percent, 0..100) under the names of the contract's activity families.
GPM_METRICS = {
    "sm_active": "NVML_GPM_METRIC_SM_UTIL",
    "sm_occupancy": "NVML_GPM_METRIC_SM_OCCUPANCY",
    "tensor_active": "NVML_GPM_METRIC_ANY_TENSOR_UTIL",
    "dram_active": "NVML_GPM_METRIC_DRAM_BW_UTIL",
    "graphics_engine_active": "NVML_GPM_METRIC_GRAPHICS_UTIL",
    "pipe_fp64": "NVML_GPM_METRIC_FP64_UTIL",
    "pipe_fp32": "NVML_GPM_METRIC_FP32_UTIL",
    "pipe_fp16": "NVML_GPM_METRIC_FP16_UTIL",
    # per-type tensor activity, for delivered work (`agent.collectors.delivered`)
    "hmma_tensor_active": "NVML_GPM_METRIC_HMMA_TENSOR_UTIL",
    "dfma_tensor_active": "NVML_GPM_METRIC_DFMA_TENSOR_UTIL",
    "imma_tensor_active": "NVML_GPM_METRIC_IMMA_TENSOR_UTIL",
}
