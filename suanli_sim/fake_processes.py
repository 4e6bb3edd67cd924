"""The processes of a scenario's jobs: pids, start times, memory and their share of the GPU.

Every job runs `processes_per_gpu` processes on each of its GPUs (or on MIG device `mig` of
each). Pids are a pure function of (seed, job): a job's processes get nearby pids, as processes
launched together do, in 10000..4000000 (`pid_max` is 4194304 on large hosts), distinct across
the whole scenario. A process exists while its job is active (start <= t < end).

A GPU (or MIG device) that some job names is *job-driven*: its workload runs only while a job
that is not `idle` is active on it, and its memory used is a small idle baseline plus its
processes' memory. Other GPUs run their workload all the time, as in scenarios without jobs.
A process's memory is its job's `memory_mib`, else the unit's workload memory share split
evenly among the processes active on it. Each tick, the unit's utilisation is split among its
busy processes by a per-job weight with a little per-tick jitter (largest remainder, so the
shares add up to the unit's utilisation exactly); idle jobs get nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from suanli_sim.fake_jobs import JobSpec, digest
from suanli_sim.fake_scenario import Scenario
from suanli_sim.fake_workload import TICK, Workload, unit

PID_LOW, PID_HIGH = 10_000, 4_000_000
SAMPLE_BUFFER_TICKS = 60  # how far back per-process samples reach (assumed driver buffer)
HZ = 100  # USER_HZ: /proc/<pid>/stat counts clock ticks of 1/100 s
Window = tuple[float, float | None]


@dataclass(frozen=True)
class FakeProcess:
    """One process of a job on one GPU (or MIG device)."""

    pid: int
    job: JobSpec
    gpu: int
    mig: int | None  # MIG device index; None: the whole GPU
    task: int  # its index among the job's processes (Slurm's task_<n>)
    ppid: int  # the job's launcher (slurmstepd, containerd-shim, ...); not itself a GPU process
    starttime: int  # /proc/<pid>/stat field 22: clock ticks after boot
    weight: float  # its job's share of a GPU it shares, before jitter

    def active(self, t: float) -> bool:
        return self.job.active(t)


@dataclass(frozen=True)
class Sample:
    """A process's utilisation since a time: pid, last tick with SM activity, SM %, memory %."""

    pid: int
    tick: int
    sm: int
    mem: int


def _int(data: bytes) -> int:
    return int.from_bytes(data[:8], "big")


def boot_ticks(seed: int) -> int:
    """Uptime at simulated time 0 in clock ticks: the node booted 3 to 23 days earlier."""
    return (3 * 86_400 + _int(digest(seed, "boot")) % (20 * 86_400)) * HZ


@functools.lru_cache(maxsize=32)
def scenario_processes(scenario: Scenario) -> tuple[FakeProcess, ...]:
    """Every process of the scenario: legacy per-GPU `processes` first, then each job's."""
    out = [
        FakeProcess(
            p.pid,
            JobSpec(str(p.pid), "host", (gpu,), memory_mib=p.used_mib, user=0, legacy=True),
            gpu,
            None,
            0,
            1,
            boot_ticks(scenario.seed) - 60 * HZ,
            1.0,
        )
        for gpu, spec in enumerate(scenario.gpus)
        for p in spec.processes
    ]
    taken = {p.pid for p in out}
    for job in scenario.jobs:
        out.extend(_job_processes(scenario.seed, job, taken))
    return tuple(out)


def _job_processes(seed: int, job: JobSpec, taken: set[int]) -> list[FakeProcess]:
    h = _int(digest(seed, job.scheduler, job.id, "pids"))
    base = PID_LOW + h % (PID_HIGH - PID_LOW - 10_000)
    step = 2 + (h >> 40) % 6  # other threads and helpers take the pids in between
    weight = 0.5 + unit(h, 0x57)
    started = boot_ticks(seed) + round(job.start * HZ)
    out = []
    for n in range(len(job.gpus) * job.processes_per_gpu):
        pid = base + 1 + n * step
        while pid in taken:
            pid += 1
        taken.add(pid)
        gpu = job.gpus[n // job.processes_per_gpu]
        out.append(FakeProcess(pid, job, gpu, job.mig, n, base, started + 7 + 3 * n, weight))
    return out


class UnitProcesses:
    """The processes of one GPU, or of one MIG device, and what they use."""

    def __init__(self, seed: int, processes: Sequence[FakeProcess]) -> None:
        self.seed = seed
        self.processes = tuple(processes)
        self.driven = any(not p.job.legacy for p in self.processes)

    def busy_windows(self) -> tuple[Window, ...] | None:
        """When the unit's workload runs: None for always (not job-driven)."""
        if not self.driven:
            return None
        return tuple((p.job.start, p.job.end) for p in self.processes if not p.job.idle)

    def at(self, t: float) -> list[FakeProcess]:
        return [p for p in self.processes if p.active(t)]

    def memory(self, t: float, workload_mib: int) -> list[tuple[FakeProcess, int | None]]:
        """Processes active at t with their memory in MiB (None: NVML cannot tell)."""
        active = self.at(t)
        share = workload_mib // max(1, len(active))
        return [
            (p, p.job.memory_mib if p.job.memory_mib is not None or p.job.legacy else share)
            for p in active
        ]

    def used_mib(self, t: float, workload_mib: int, baseline: int, capacity: int) -> int:
        """What a job-driven unit reports as used: baseline plus its processes' memory."""
        held = sum(mib or 0 for _, mib in self.memory(t, workload_mib))
        return min(capacity, baseline + held)

    def busy(self, k: int) -> list[FakeProcess]:
        """The processes that compute in tick k (their job is active and not idle)."""
        return [p for p in self.processes if not p.job.idle and p.active(k * TICK)]

    def split(self, k: int, *totals: int) -> dict[int, tuple[int, ...]]:
        """Each total (SM %, memory %) of tick k shared among the busy processes, by pid."""
        busy = self.busy(k)
        weights = [p.weight * (0.85 + 0.3 * unit(self.seed, p.pid, k)) for p in busy]
        parts = [shares(total, weights) for total in totals]
        return {p.pid: tuple(part[i] for part in parts) for i, p in enumerate(busy)}

    def samples(self, work: Workload, first: int, last: int) -> list[Sample]:
        """Per-process utilisation over ticks first..last as NVML's driver reports it: the
        mean over the ticks the process ran, for processes with some SM activity."""
        sums: dict[int, list[int]] = {}  # pid -> [SM % sum, memory % sum, ticks, last busy tick]
        for k in range(first, last + 1) if self.processes else ():
            if not self.busy(k):
                continue
            tick = work.tick(k)
            for pid, (sm, mem) in self.split(k, tick.util, tick.mem_util).items():
                entry = sums.setdefault(pid, [0, 0, 0, -1])
                entry[0] += sm
                entry[1] += mem
                entry[2] += 1
                if sm > 0:
                    entry[3] = k
        return [
            Sample(pid, last_k, round(sm / n), round(mem / n))
            for pid, (sm, mem, n, last_k) in sums.items()
            if last_k >= 0
        ]


def shares(total: int, weights: Sequence[float]) -> list[int]:
    """Integers proportional to weights that add up to total (largest remainder)."""
    whole = sum(weights)
    if not weights or whole <= 0:
        return [0] * len(weights)
    exact = [total * w / whole for w in weights]
    out = [int(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: out[i] - exact[i])
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out
