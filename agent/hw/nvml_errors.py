"""The gateway's own exceptions, and NVML error names as the error metrics label them.

NVML's exception classes themselves (`NVMLError`) come from the binding, through `agent/hw/nvml.py`.
"""

from __future__ import annotations


class NvmlUnavailable(Exception):
    """NVML cannot be used right now (library missing, driver not loaded, not initialised)."""


class GpuGone(Exception):
    """The GPU answered GPU_IS_LOST: stop reading it this cycle."""


def error_name(err: BaseException) -> str:
    """`NVMLError_GpuIsLost` -> `GpuIsLost`; anything else -> its class name."""
    name = type(err).__name__
    return name.removeprefix("NVMLError_")
