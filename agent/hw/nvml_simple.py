"""NVML values that are one call and one conversion, declared as data.

Each entry names a pynvml function (and its arguments after the handle) and the values taken
from its answer: their keys in `GpuReading.values` and their conversions to base units. The
backend reads them all every cycle through the gateway (NOT_SUPPORTED remembered, errors
counted); a GPU family exports one with `gpu_family.value("key")`. A value that needs more
than one call, a versioned structure or state across cycles belongs in `nvml_dynamic.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SimpleRead:
    function: str
    values: Mapping[str, Callable[[Any], float]]
    args: tuple[Any, ...] = ()


SIMPLE_READS: tuple[SimpleRead, ...] = (
    # BAR1: the window through which peers and NICs (GPUDirect RDMA) reach GPU memory; pinned
    # buffers that exhaust it make registrations fail while framebuffer memory is free.
    SimpleRead(
        "nvmlDeviceGetBAR1MemoryInfo",
        {
            "bar1_used_bytes": lambda v: float(v.bar1Used),
            "bar1_total_bytes": lambda v: float(v.bar1Total),
        },
    ),
)
