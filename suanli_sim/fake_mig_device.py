"""The MIG devices (GPU instance + compute instance) of one fake GPU, and a GPU's activity source.

A MIG device runs its own workload (the GPU's, unless its layout entry names one), seeded apart
from the GPU's, so its memory use and GPM activity are its own. Its UUID has the `MIG-` + 8-4-4-4-12
hex form that drivers >= R470 print (`nvidia-smi -L` in the MIG captures).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.fake_activity import Activity, CombinedActivity
from suanli_sim.fake_mig import EIGHTHS, PROFILES, Placed, layout
from suanli_sim.fake_models import GpuModel
from suanli_sim.fake_processes import FakeProcess, UnitProcesses
from suanli_sim.fake_scenario import GpuSpec
from suanli_sim.fake_workload import TICK, Windows, Workload, mix

P = pynvml


def uuid_from(h: int, prefix: str) -> str:
    """A UUID string from a 64-bit hash, like NVML's `GPU-`/`MIG-` UUIDs."""
    tail = mix(h, 2) & (1 << 48) - 1
    head = f"{prefix}-{h >> 32:08x}-{h >> 16 & 0xFFFF:04x}-{h & 0xFFFF:04x}"
    return f"{head}-{mix(h, 1) & 0xFFFF:04x}-{tail:012x}"


class MigDevice:
    """MIG device `index` (nvidia-smi's "MIG Dev") of GPU `gpu`."""

    compute_instance = 0  # one compute instance spanning each GPU instance

    def __init__(
        self,
        seed: int,
        gpu: int,
        index: int,
        placed: Placed,
        model: GpuModel,
        limit_w: float,
        jobs: UnitProcesses | None = None,
    ) -> None:
        self.gpu = gpu
        self.index = index
        self.profile = placed.profile
        self.gpu_instance = placed.gpu_instance
        self.model = model
        self.jobs = jobs or UnitProcesses(seed, [])
        stream = 10_000 + 64 * gpu + placed.gpu_instance  # its own workload noise
        windows = Windows(busy=self.jobs.busy_windows())
        self.work = Workload(placed.workload, model, seed, stream, limit_w, False, windows)
        self.activity = Activity(self.work, mix(seed, stream, 0x61))
        self.uuid = uuid_from(mix(seed, gpu, placed.gpu_instance, 0x4D49), "MIG")

    @property
    def name(self) -> str:
        return f"{self.model.name} MIG {self.profile.name}"  # as CUDA names MIG devices

    def memory_used_mib(self, t: float) -> int:
        """Idle: the captured driver overhead; busy: the workload's share of the instance;
        job-driven: the overhead plus its processes' memory."""
        idle = self.profile.idle_used_mib
        if self.jobs.driven:
            return self.jobs.used_mib(t, self._job_mib(t), idle, self.profile.memory_mib)
        tick = self.work.tick(int(t // TICK))
        if self.work.profile == "idle":
            return idle
        share = tick.mem_used_mib / self.work.usable_mib
        return max(idle, int(share * self.profile.memory_mib))

    def _job_mib(self, t: float) -> int:
        return int(self.work.memory_share(int(t // TICK)) * self.profile.memory_mib)

    def process_memory(self, t: float) -> list[tuple[FakeProcess, int | None]]:
        return self.jobs.memory(t, self._job_mib(t))

    def attributes(self) -> Any:
        p = self.profile
        return P.c_nvmlDeviceAttributes(
            p.sms, p.copy_engines, p.decoders, 0, p.jpegs, p.ofas, p.slices, p.slices, p.memory_mib
        )


def mig_devices(
    seed: int,
    gpu: int,
    spec: GpuSpec,
    model: GpuModel,
    limit_w: float,
    jobs: Sequence[UnitProcesses] = (),
) -> list[MigDevice]:
    """The MIG devices of a GPU; `jobs[i]`: the processes on MIG device i."""
    if not spec.mig:
        return []
    placed = layout(spec.mig, model.key, spec.workload, f"gpus[{gpu}].mig")
    return [
        MigDevice(seed, gpu, i, p, model, limit_w, jobs[i] if i < len(jobs) else None)
        for i, p in enumerate(placed)
    ]


def gpu_activity(
    seed: int, gpu: int, work: Workload, devices: list[MigDevice]
) -> Activity | CombinedActivity:
    """A GPU's activity: its own workload's, or in MIG mode its instances' combined."""
    if not devices:
        return Activity(work, mix(seed, gpu, 0x61))
    full = max(p.sms for p in PROFILES[devices[0].model.key].values())
    return CombinedActivity(
        [(d.activity, d.profile.sms / full, d.profile.eighths / EIGHTHS) for d in devices]
    )
