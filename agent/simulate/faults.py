"""Fault bundles for the simulator's `fault` nodes: together they fail every health check.

The fault nodes of a fleet take the bundles in turn, so any five consecutive fault nodes (a
50-node fleet has five) fail all nine checks of docs/health.md between them: lost,
xid_critical, uncorrectable_ecc, row_remap_failure, row_remap_pending, pcie_link_degraded,
thermal, nvlink_down and recovery_action; the sixth bundle is a node whose driver is not
loaded for its first ten minutes. Times are simulated seconds since the node started: faults
that need the GPU to have been seen once (a lost GPU) or an event set to exist (XIDs) start
at 1-3 s, after the node's first sample.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]


def _lost(gpus: list[int]) -> tuple[str, list[Doc]]:
    a, b = gpus[:2]
    return f"GPU {a} falls off the bus (XID 79) at 2 s; GPU {b} in hardware thermal slowdown", [
        {"kind": "gpu_lost", "gpu": a, "at": 2},
        {"kind": "xid", "gpu": a, "at": 2, "code": 79},
        {"kind": "thermal", "gpu": b, "at": 1, "until": 3600, "hw": True},
    ]


def _ecc(gpus: list[int]) -> tuple[str, list[Doc]]:
    a, b = gpus[:2]
    return f"GPU {a}: uncorrectable ECC, XID 48, reset asked; GPU {b}: row remap pending", [
        {"kind": "ecc", "gpu": a, "at": 1, "corrected": 40, "uncorrected": 2},
        {"kind": "xid", "gpu": a, "at": 1, "code": 48},
        {"kind": "recovery_action", "gpu": a, "at": 1, "action": "gpu_reset"},
        {"kind": "row_remap_pending", "gpu": b, "at": 1},
        {"kind": "xid", "gpu": b, "at": 1, "code": 63},
    ]


def _remap(gpus: list[int]) -> tuple[str, list[Doc]]:
    a, b = gpus[:2]
    return f"GPU {a}: row remap failure (XID 64), drain and reset; GPU {b}: PCIe at x8", [
        {"kind": "row_remap_failure", "gpu": a, "at": 1},
        {"kind": "xid", "gpu": a, "at": 1, "code": 64},
        {"kind": "recovery_action", "gpu": a, "at": 1, "action": "drain_and_reset"},
        {"kind": "pcie_degraded", "gpu": b, "width": 8},
    ]


def _nvlink(gpus: list[int]) -> tuple[str, list[Doc]]:
    a, b, c = gpus[:3]
    return (
        f"GPU {a}: NVLinks 0-2 down (XID 74); GPU {b}: NVML errors on power for 10 min; "
        f"GPU {c}: 20 XID 13"
    ), [
        {"kind": "nvlink_down", "gpu": a, "at": 1, "links": [0, 1, 2]},
        {"kind": "xid", "gpu": a, "at": 1, "code": 74},
        {
            "kind": "error_storm",
            "gpu": b,
            "at": 1,
            "duration": 600,
            "functions": ["nvmlDeviceGetPowerUsage"],
        },
        {"kind": "xid", "gpu": c, "at": 5, "code": 13, "count": 20},
    ]


def _software(gpus: list[int]) -> tuple[str, list[Doc]]:
    a, b, c, d = gpus[:4]
    return (
        f"GPU {a}: software thermal slowdown; GPU {b}: XID 94; GPU {c}: XID 31; "
        f"GPU {d}: PCIe at Gen4"
    ), [
        {"kind": "thermal", "gpu": a, "at": 1, "hw": False},
        {"kind": "xid", "gpu": b, "at": 3, "code": 94},
        {"kind": "xid", "gpu": c, "at": 30, "code": 31},
        {"kind": "pcie_degraded", "gpu": d, "generation": 4},
    ]


def _driver(gpus: list[int]) -> tuple[str, list[Doc]]:
    return "NVIDIA driver not loaded for the first 10 minutes (suanli_nvml_up 0)", [
        {"kind": "driver_not_loaded", "until": 600},
    ]


BUNDLES: tuple[Callable[[list[int]], tuple[str, list[Doc]]], ...] = (
    _lost,
    _ecc,
    _remap,
    _nvlink,
    _software,
    _driver,
)


def fault_bundle(number: int, rng: random.Random, gpu_count: int) -> tuple[str, list[Doc]]:
    """The `number`-th fault node's (description, faults) on distinct random GPUs."""
    gpus = rng.sample(range(gpu_count), min(4, gpu_count))
    return BUNDLES[number % len(BUNDLES)](gpus)


def application_xids(rng: random.Random) -> list[Doc]:
    """Non-critical XIDs a training job causes now and then (13: graphics exception,
    31: MMU fault, 43: reset channel), at random times in the first half hour."""
    code = rng.choice((13, 31, 43))
    return [{"kind": "xid", "gpu": rng.randrange(8), "at": rng.randrange(20, 1800), "code": code}]
