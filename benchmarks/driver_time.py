"""One GPU read cycle at a real driver's pace: every GPU in a reader of its own, or one after
another. The fake NVML sleeps each call's median time on a real H200 (`latency: h200`,
suanli_sim/fake_latency.py), so the cycle costs what the driver's answers cost, not Python's."""

from __future__ import annotations

import dataclasses
import statistics
import time

from agent.hw.nvml import NvmlGateway
from agent.hw.nvml_backend import BackendOptions, NvmlBackend
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import load_scenario

NO_SYSFS = "/nonexistent/suanli-benchmark-sysfs"


def _median_read_ms(scenario: str, inline: bool, cycles: int) -> float:
    fake = FakeNvml(dataclasses.replace(load_scenario(scenario), latency="h200"))
    options = BackendOptions(xid_events=False, inline=inline, gpu_deadline_s=60.0, sysfs=NO_SYSFS)
    backend = NvmlBackend(NvmlGateway(fake), options)
    try:
        backend.read()  # discovery and static facts: not a steady cycle
        times = []
        for _ in range(cycles):
            began = time.perf_counter()
            backend.read()
            times.append((time.perf_counter() - began) * 1000)
        return statistics.median(times)
    finally:
        backend.close()


def measure(scenario: str, cycles: int) -> dict[str, float]:
    parallel = _median_read_ms(scenario, inline=False, cycles=cycles)
    sequential = _median_read_ms(scenario, inline=True, cycles=cycles)
    return {
        "h200_read_parallel_ms": parallel,
        "h200_read_sequential_ms": sequential,
        "h200_read_speedup": sequential / parallel if parallel else 0.0,
    }
