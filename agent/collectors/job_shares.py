"""What each job on a GPU gets of one cycle's GPU-seconds, busy seconds, energy and FLOP.

A *unit* is a whole GPU, or one MIG instance of a GPU in MIG mode. Each cycle a unit has holders
(the jobs it is allocated to, with a weight each: their processes' SM share) and amounts:

- `gpu_seconds`: the interval's length, times the unit's share of its GPU (1, or for a MIG
  instance its SMs over the GPU's, `mig_share`); shared equally among the unit's holders;
- `busy_gpu_seconds`: the unit's SM activity (GPM `sm_active`; NVML utilisation where the GPU has
  no GPM) times its GPU-seconds; split by weight, equally when no weight;
- `idle_allocated_gpu_seconds`: all of the unit's GPU-seconds when its activity was at most
  `idle_below` over the interval, else 0; shared as `gpu_seconds`; not counted when the activity is
  unknown;
- `energy_joules`: the GPU's energy counter's advance, times the unit's share; split by weight;
- `flops_<precision>`: the GPU counter's own step (`delivered.gpu_delivered_flops`, over the
  interval GPM covers) or the instance's (`mig_delivered_flops`); split by weight.

Whatever no job holds (a GPU without holders, an instance without holders, the part of a GPU in
MIG mode no instance covers) goes to `job_id="none"`, computed as the GPU's total less what the
holders got, so the jobs and `none` add up to each GPU's totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.collectors.delivered import gpu_delivered_flops, mig_delivered_flops
from agent.collectors.mig_share import instance_share
from agent.hw import GpuReading

Key = tuple[str, str]  # (scheduler, job_id)
Amounts = dict[str, float]
NONE_KEY: Key = ("none", "none")
FLOPS = "flops_"


@dataclass
class Holders:
    """Who holds a GPU this cycle: of the whole GPU, or per MIG GPU instance id."""

    gpu: dict[Key, float] = field(default_factory=dict)  # job -> weight (SM share)
    mig: dict[int, dict[Key, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Interval:
    seconds: float
    joules: float | None  # the energy counter's advance; None: unknown
    idle_below: float


def _unit_amounts(
    share: float, activity: float | None, flops: Mapping[str, float], at: Interval
) -> Amounts:
    seconds = share * at.seconds
    amounts = {"gpu_seconds": seconds}
    if at.joules is not None:
        amounts["energy_joules"] = share * at.joules
    if activity is not None:
        amounts["busy_gpu_seconds"] = activity * seconds
        amounts["idle_allocated_gpu_seconds"] = seconds if activity <= at.idle_below else 0.0
    amounts.update({FLOPS + p: v for p, v in flops.items()})
    return amounts


def _split(amounts: Amounts, holders: Mapping[Key, float]) -> dict[Key, Amounts]:
    total = sum(holders.values())
    out: dict[Key, Amounts] = {}
    for key, weight in holders.items():
        equal = 1.0 / len(holders)
        by_weight = weight / total if total > 0 else equal
        out[key] = {
            name: value * (equal if name in _BY_HOLDING else by_weight)
            for name, value in amounts.items()
        }
    return out


_BY_HOLDING = ("gpu_seconds", "idle_allocated_gpu_seconds")


def add(into: dict[Key, Amounts], key: Key, amounts: Mapping[str, float]) -> None:
    target = into.setdefault(key, {})
    for name, value in amounts.items():
        target[name] = target.get(name, 0.0) + value


def gpu_increments(reading: GpuReading, holders: Holders, at: Interval) -> dict[Key, Amounts]:
    """Each holder's part of the GPU's amounts over the interval, and `none`'s."""
    if not reading.mig:
        activity = reading.activity.get("sm_active", reading.utilization_ratio)
        flops = gpu_delivered_flops(reading)  # exactly the GPU counter's step
        amounts = _unit_amounts(1.0, activity, flops, at)
        return _split(amounts, holders.gpu) if holders.gpu else {NONE_KEY: amounts}
    return _mig_increments(reading, holders, at)


def _mig_increments(reading: GpuReading, holders: Holders, at: Interval) -> dict[Key, Amounts]:
    out: dict[Key, Amounts] = {}
    total = _unit_amounts(1.0, None, gpu_delivered_flops(reading), at)
    covered, busy, idle = 0.0, 0.0, 0.0
    known = True  # every instance's share and activity: then the GPU's idle time is known
    for mig in reading.mig:
        share = instance_share(reading, mig)
        activity = mig.activity.get("sm_active")
        known = known and share is not None and activity is not None
        if share is None:
            continue
        flops = mig_delivered_flops(reading, mig, mig.activity_seconds or 0.0)
        amounts = _unit_amounts(share, activity, flops, at)
        covered += share
        busy += amounts.get("busy_gpu_seconds", 0.0)
        idle += amounts.get("idle_allocated_gpu_seconds", 0.0)
        for key, part in _split(amounts, holders.mig.get(mig.instance.gpu_instance, {})).items():
            add(out, key, part)
    if any("sm_active" in mig.activity for mig in reading.mig):
        total["busy_gpu_seconds"] = busy  # the GPU's busy time is its instances' (SM-weighted)
    if known:  # SMs no instance covers idle too
        total["idle_allocated_gpu_seconds"] = idle + max(0.0, 1.0 - covered) * at.seconds
    add(out, NONE_KEY, _remainder(total, out))
    return out


def _remainder(total: Amounts, held: Mapping[Key, Amounts]) -> Amounts:
    rest = dict(total)
    for amounts in held.values():
        for name, value in amounts.items():
            if name in rest:
                rest[name] = max(0.0, rest[name] - value)
    return rest
