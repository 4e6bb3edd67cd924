"""NVSwitch fabric state of a GPU: whether its registration with the fabric manager completed.

On an HGX board a GPU joins the NVLink fabric through the NVSwitches; until the fabric manager
has registered it (state Completed, status Success) NCCL jobs across its NVLinks fail to start.
`nvmlDeviceGetGpuFabricInfo(handle, info)` hands `info` straight to C, which expects a pointer:
the structure is passed with `ctypes.byref`. (A structure passed by value, as the binding's
`...InfoV` signature invites, crashed a real H200's process: ../shared/reference/h200/.)
A board without a fabric answers state NOT_SUPPORTED: its fabric values stay absent.
"""

from __future__ import annotations

import ctypes
from typing import Any

from agent.hw import GpuReading
from agent.hw.nvml import NVMLError, NvmlGateway


def read_fabric(gw: NvmlGateway, reading: GpuReading, handle: Any) -> None:
    nv = gw.nv
    info = nv.c_nvmlGpuFabricInfo_t()
    try:
        answered = gw.call(
            "nvmlDeviceGetGpuFabricInfo",
            ("fabric", reading.device.index),
            handle,
            ctypes.byref(info),
        )
    except NVMLError:
        return
    if answered is None or int(info.state) == nv.NVML_GPU_FABRIC_STATE_NOT_SUPPORTED:
        return
    reading.fabric_state = int(info.state)
    reading.fabric_status = int(info.status)
    reading.fabric_clique = int(info.cliqueId)
