"""MIG for the fake NVML: GPU instance profiles per model, and scenario layouts placed on a GPU.

A layout lists GPU instance profiles (`[3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]`); each becomes one
GPU instance with one compute instance spanning it (CI ID 0), placed the way the driver places
them: instances occupy eighths of the GPU (`Start:Size` placements, as `nvidia-smi mig -lgi`
prints), and their GPU instance IDs follow from profile and placement (7g: 0; 4g and 3g at 0: 1;
3g at 4: 2; 2g and 1g.<2 eighths> at 0/2/4/6: 3..6; 1g at n: 7+n), which reproduces every
captured layout: H100 [C2] GI 2/3/9/10, H200 [C7] GI 2/3/9/10, A100-80GB [C11] GI 3..6.
MIG devices are numbered in GPU instance ID order, as `nvidia-smi` lists them.

Profile facts (SMs, memory MiB, copy engines, decoders, JPEG, OFA) come from the MIG captures
where captured, else from real `nvidia-smi mig -lgip` listings (memory GiB x 1024) — see each
table. Idle "used" memory per instance is captured for some profiles, assumed for the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from suanli_sim.fake_workload import WORKLOADS
from suanli_sim.fake_yaml import ScenarioError, mapping, typed

EIGHTHS = 8  # memory/placement units of an A100/Hopper GPU (7 compute slices)
COMPUTE_SLICES = 7
MAX_MIG_DEVICES = 7


@dataclass(frozen=True)
class MigProfile:
    """A GPU instance profile: `slices` compute sevenths, `eighths` memory/placement eighths."""

    name: str
    slices: int
    eighths: int
    sms: int
    memory_mib: int
    copy_engines: int
    decoders: int
    jpegs: int
    ofas: int
    idle_used_mib: int


def _table(
    *rows: tuple[str, int, int, int, int, int, int, int, int, int],
) -> dict[str, MigProfile]:
    return {row[0]: MigProfile(*row) for row in rows}


# H100 SXM5 80GB: 3g.40gb/2g.20gb/1g.10gb from the capture [C2] (SMs 60/32/16, MiB 40448/20096/
# 9984, idle used 26/17/9); 1g.20gb, 4g.40gb, 7g.80gb from an H100 80GB HBM3 `mig -lgip` listing
# (hrishi.dev Kubernetes GPU series; same numbers at jbarrow.ai/field_notes/nvidia-mig): 26/64/132
# SMs, 19.62/39.50/79.25 GiB. Idle used of those three: assumed.
_H100 = _table(
    ("1g.10gb", 1, 1, 16, 9984, 1, 1, 1, 0, 9),
    ("1g.20gb", 1, 2, 26, 20096, 1, 1, 1, 0, 9),
    ("2g.20gb", 2, 2, 32, 20096, 2, 2, 2, 0, 17),
    ("3g.40gb", 3, 4, 60, 40448, 3, 3, 3, 0, 26),
    ("4g.40gb", 4, 4, 64, 40448, 4, 4, 4, 0, 34),
    ("7g.80gb", 7, 8, 132, 81152, 8, 7, 7, 1, 59),
)
# A100-SXM4-80GB: 1g.20gb from the capture [C11] (14 SMs, 19968 MiB, CE 1, DEC 1, JPG 0, idle
# used 12 MiB); the rest from A100 80GB `mig -lgip` listings (9.50/19.50/39.25/79.00 GiB, 14/28/
# 42/56/98 SMs; decoders as in NVIDIA go-nvml's mock). Idle used of the others: assumed.
_A100_80 = _table(
    ("1g.10gb", 1, 1, 14, 9728, 1, 0, 0, 0, 12),
    ("1g.20gb", 1, 2, 14, 19968, 1, 1, 0, 0, 12),
    ("2g.20gb", 2, 2, 28, 19968, 2, 1, 0, 0, 20),
    ("3g.40gb", 3, 4, 42, 40192, 3, 2, 0, 0, 30),
    ("4g.40gb", 4, 4, 56, 40192, 4, 2, 0, 0, 38),
    ("7g.80gb", 7, 8, 98, 80896, 7, 5, 1, 1, 50),
)
# H200 141GB: 3g.71gb/2g.35gb/1g.18gb memory, 2g/1g SMs and idle used from the capture [C7]
# (71424/33280/16384 MiB); 7g.141gb (132 SMs, 140.00 GiB) and 1g.18gb/2g.35gb from an H200
# `mig -lgip` listing. Assumed (as H100): 3g 60 SMs, 4g 64 SMs, 1g.35gb 26 SMs and 33280 MiB.
_H200 = _table(
    ("1g.18gb", 1, 1, 16, 16384, 1, 1, 1, 0, 9),
    ("1g.35gb", 1, 2, 26, 33280, 1, 1, 1, 0, 9),
    ("2g.35gb", 2, 2, 32, 33280, 2, 2, 2, 0, 17),
    ("3g.71gb", 3, 4, 60, 71424, 3, 3, 3, 0, 22),
    ("4g.71gb", 4, 4, 64, 71424, 4, 4, 4, 0, 30),
    ("7g.141gb", 7, 8, 132, 143360, 8, 7, 7, 1, 59),
)
# H20 96GB: NOT CAPTURED. Profile names from NVIDIA's vGPU/MIG documentation (7g.96gb, 4g.48gb,
# 3g.48gb, 2g.24gb, 1g.12gb; 1g.24gb by analogy). Memory: H100's x 1.2 (96/80) rounded down to
# 64 MiB; SMs: H100's x 78/132 (the H20 has 78 SMs), rounded. Both assumed.
_H20 = _table(
    ("1g.12gb", 1, 1, 10, 11968, 1, 1, 1, 0, 9),
    ("1g.24gb", 1, 2, 16, 24064, 1, 1, 1, 0, 9),
    ("2g.24gb", 2, 2, 20, 24064, 2, 2, 2, 0, 17),
    ("3g.48gb", 3, 4, 36, 48512, 3, 3, 3, 0, 26),
    ("4g.48gb", 4, 4, 38, 48512, 4, 4, 4, 0, 34),
    ("7g.96gb", 7, 8, 78, 97344, 8, 7, 7, 1, 59),
)
PROFILES: dict[str, dict[str, MigProfile]] = {
    "H100-SXM5-80GB": _H100,
    "H800-SXM5-80GB": _H100,  # H100 silicon; NVIDIA lists the same profile names for H800
    "H200-SXM-141GB": _H200,
    "H20-96GB": _H20,
    "A100-SXM4-80GB": _A100_80,
}
# `mig: true`: the captured layouts (H100/H200 [C2]/[C7] without H200's split 3g, A100 [C11])
DEFAULT_LAYOUTS: dict[str, tuple[str, ...]] = {
    "H100-SXM5-80GB": ("3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"),
    "H800-SXM5-80GB": ("3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"),
    "H200-SXM-141GB": ("3g.71gb", "2g.35gb", "1g.18gb", "1g.18gb"),
    "H20-96GB": ("3g.48gb", "2g.24gb", "1g.12gb", "1g.12gb"),
    "A100-SXM4-80GB": ("1g.20gb", "1g.20gb", "1g.20gb", "1g.20gb"),
}


@dataclass(frozen=True)
class MigSpec:
    """One GPU instance of a scenario's layout; workload None: the GPU's own."""

    profile: str
    workload: str | None = None


@dataclass(frozen=True)
class Placed:
    """A GPU instance placed on its GPU."""

    profile: MigProfile
    start: int
    gpu_instance: int
    workload: str


def placements(profile: MigProfile) -> list[int]:
    """Placement starts (in eighths) the driver may use for a profile, preferred first."""
    if profile.eighths == EIGHTHS:
        return [0]
    if profile.eighths == 4:
        return [4, 0] if profile.slices == 3 else [0]
    if profile.eighths == 2:
        return [0, 2, 4] if profile.slices == 2 else [0, 2, 4, 6]
    return list(range(COMPUTE_SLICES))


def instance_id(profile: MigProfile, start: int) -> int:
    if profile.eighths == EIGHTHS:
        return 0
    if profile.eighths == 4:
        return 1 + start // 4
    if profile.eighths == 2:
        return 3 + start // 2
    return 7 + start


def place(profiles: Sequence[MigProfile]) -> list[int] | None:
    """Placement starts for the profiles (same order), or None when they do not fit."""
    order = sorted(range(len(profiles)), key=lambda i: -profiles[i].eighths)
    starts = [0] * len(profiles)

    def fit(n: int, used: int) -> bool:
        if n == len(order):
            return True
        profile = profiles[order[n]]
        for start in placements(profile):
            mask = ((1 << profile.eighths) - 1) << start
            if not used & mask:
                starts[order[n]] = start
                if fit(n + 1, used | mask):
                    return True
        return False

    return starts if fit(0, 0) else None


def parse_mig(value: Any, path: str, model: str, workload: str) -> tuple[MigSpec, ...]:
    """A GPU's `mig` key: false, true (the model's default layout) or a list of profiles."""
    if value is False:
        return ()
    if model not in PROFILES:
        raise ScenarioError(f"{path}: {model} is not MIG-capable")
    if value is True:
        return tuple(MigSpec(name) for name in DEFAULT_LAYOUTS[model])
    entries = typed(value, path, list)
    if not entries:
        raise ScenarioError(f"{path}: a MIG layout needs at least one GPU instance")
    specs = tuple(_mig_entry(e, f"{path}[{i}]", model) for i, e in enumerate(entries))
    layout(specs, model, workload, path)  # raises when it does not fit
    return specs


def _mig_entry(entry: Any, path: str, model: str) -> MigSpec:
    raw = {"profile": entry} if isinstance(entry, str) else mapping(entry, path, None)
    mapping(raw, path, {"profile", "workload"})
    name = typed(raw.get("profile"), f"{path}.profile", str)
    if name not in PROFILES[model]:
        known = ", ".join(PROFILES[model])
        raise ScenarioError(f'{path}: unknown {model} MIG profile "{name}"; known: {known}')
    workload = raw.get("workload")
    if workload is not None and typed(workload, f"{path}.workload", str) not in WORKLOADS:
        raise ScenarioError(f'{path}.workload: unknown workload "{workload}"')
    return MigSpec(name, workload)


def layout(specs: Sequence[MigSpec], model: str, workload: str, path: str) -> list[Placed]:
    """The GPU instances of a layout in MIG device order (by GPU instance ID)."""
    profiles = [PROFILES[model][s.profile] for s in specs]
    slices = sum(p.slices for p in profiles)
    names = "[" + ", ".join(s.profile for s in specs) + "]"
    if slices > COMPUTE_SLICES:
        raise ScenarioError(
            f"{path}: layout {names} needs {slices} compute slices; {model} has {COMPUTE_SLICES}"
        )
    starts = place(profiles)
    if starts is None:
        raise ScenarioError(f"{path}: layout {names} does not fit {model}'s MIG placements")
    placed = [
        Placed(p, start, instance_id(p, start), s.workload or workload)
        for p, start, s in zip(profiles, starts, specs, strict=True)
    ]
    return sorted(placed, key=lambda p: p.gpu_instance)
