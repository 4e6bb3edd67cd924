"""Fault bundles for the simulator's `fault` nodes: together they fail every health check.

The fault nodes of a fleet take the bundles in turn, so any five consecutive fault nodes (a
50-node fleet has five) fail the checks of docs/health.md between them: lost, missing,
xid_critical, uncorrectable_ecc, row_remap_failure, row_remap_pending, pcie_link_degraded,
thermal, nvlink_down, fabric and recovery_action, log XIDs of every catalogue action the
dashboards split by, and NVSwitch SXids (fatal and not) in the kernel log; the sixth bundle is a
node whose driver is not loaded for its first ten minutes. Times are simulated seconds since the
node started: faults that need the GPU to have been seen once (a lost GPU) or an event set to
exist (XIDs) start at 1-3 s, after the node's first sample. No bundle hangs a GPU: the
simulator samples its nodes inline (node.py), and a blocked call would stop them all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]


def _lost(gpus: list[int]) -> tuple[str, list[Doc]]:
    a, b, c = gpus[:3]
    return (
        f"GPU {a} falls off the bus (XID 79) at 2 s; GPU {b} in hardware thermal slowdown; "
        f"GPU {c} failed at boot (missing)"
    ), [
        {"kind": "gpu_lost", "gpu": a, "at": 2},
        {"kind": "xid", "gpu": a, "at": 2, "code": 79},
        {"kind": "thermal", "gpu": b, "at": 1, "until": 3600, "hw": True},
        {"kind": "missing", "gpu": c},
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


def _sxids(switch: int) -> list[Doc]:
    """A fatal SXid on `switch` at 2 s, then a non-fatal one on another every 30 s for 30 min."""
    fatal = {"kind": "sxid", "at": 2, "switch": switch, "link": 48, "code": 20034, "fatal": True}
    return [fatal] + [
        {"kind": "sxid", "at": t, "switch": (switch + 1) % 4, "link": 4, "code": 20009}
        for t in range(4, 1800, 30)
    ]


def _nvlink(gpus: list[int]) -> tuple[str, list[Doc]]:
    a, b, c, d = gpus[:4]
    return (
        f"GPU {a}: NVLinks 0-2 down (XID 74), a fatal SXid and then non-fatal ones on the "
        f"NVSwitches; GPU {b}: NVML errors on power for 10 min; GPU {c}: 20 XID 13; "
        f"GPU {d}: NVSwitch fabric registration stuck"
    ), [
        {"kind": "nvlink_down", "gpu": a, "at": 1, "links": [0, 1, 2]},
        {"kind": "xid", "gpu": a, "at": 1, "code": 74},
        *_sxids(a % 4),
        {"kind": "fabric_incomplete", "gpu": d, "at": 1},
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
        f"GPU {a}: software thermal slowdown; GPU {b}: XID 94 and XID 119 (GSP, reset); "
        f"GPU {c}: XID 31; GPU {d}: PCIe at Gen4"
    ), [
        {"kind": "thermal", "gpu": a, "at": 1, "hw": False},
        {"kind": "xid", "gpu": b, "at": 3, "code": 94},
        {"kind": "xid", "gpu": b, "at": 3, "code": 119},
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
