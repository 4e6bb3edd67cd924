"""Who uses which GPU, and the energy each job drew: the basis of chargeback.

Each cycle, every GPU process is traced through `/proc/<pid>/cgroup` to its job (Slurm job,
Kubernetes pod, container, systemd unit or host); a scheduler's mapping directory can add jobs
per GPU. Each GPU's energy since the last cycle is split among the jobs on it by their share of
SM utilisation (equally when NVML gives no per-process samples), and the rest, on GPUs with no
job, goes to `job_id="none"`: summed over jobs, the counters equal the GPUs' energy since the
agent started. GPU-seconds (allocated, busy, idle) and delivered FLOP are split the same way, a
MIG instance counting its share of the GPU (`job_shares`); the totals, the ledger of ended jobs
and the checkpoint live in `job_counters`.

Who holds a GPU (the seam): (a) `allocations`, GPU or MIG UUID -> jobs, where an allocation
source is wired in (kubelet, Slurm), so a job holding a GPU without a process is attributed;
(b) the jobs whose processes run on it; (c) the HPC job-mapping directory. All three add up.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.collectors import job_allocations
from agent.collectors.base import Context, ViewKind
from agent.collectors.job_counters import (
    JOB_ENERGY,
    JOB_FLOPS,
    JOB_SECONDS,
    Accountant,
    Held,
)
from agent.collectors.job_options import JobsOptions
from agent.hw import GpuReading, GpuSnapshot
from agent.hw.allocations import AllocationRefresher
from agent.hw.cgroups import JobRef
from agent.hw.jobs import HpcJobMapping, read_process_job
from agent.hw.pods import PodNameResolver
from agent.metrics import MetricSpec, Sample

if TYPE_CHECKING:
    from agent.hw.nvml_backend import NvmlBackend

GPU = ("gpu", "uuid")
JOB_INFO = MetricSpec(
    "suanli_gpu_job_info",
    "gauge",
    "A job using the GPU (value 1); join on uuid.",
    (*GPU, "scheduler", "job_id", "user", "namespace", "pod", "container"),
)
PROCESSES = MetricSpec("suanli_gpu_processes", "gauge", "Compute processes on the GPU.", GPU)
JOB_MEMORY = MetricSpec(
    "suanli_job_gpu_memory_used_bytes",
    "gauge",
    "GPU memory held by the job's processes.",
    (*GPU, "scheduler", "job_id"),
)
PROCESS_MEMORY = MetricSpec(
    "suanli_gpu_process_memory_used_bytes",
    "gauge",
    "GPU memory of one process (opt-in, capped).",
    (*GPU, "pid", "scheduler", "job_id"),
)
UNKNOWN = JobRef("host", "unknown")  # the process vanished or its cgroup could not be read


@dataclass
class _Usage:
    """One job on one GPU this cycle."""

    refs: set[JobRef] = field(default_factory=set)  # one per container of a pod
    memory: float | None = None
    sm: float = 0.0
    units: dict[int | None, float] = field(default_factory=dict)  # MIG GI (None: GPU): SM share

    def hold(self, unit: int | None, sm: float = 0.0) -> None:
        self.units[unit] = self.units.get(unit, 0.0) + sm


class JobAccounting:
    """The jobs view of the GPU collector's reading (`collector="jobs"`)."""

    name = "jobs"

    def __init__(
        self,
        options: JobsOptions,
        clock: Callable[[], float] = time.monotonic,
        before_read: Callable[[], None] | None = None,
        allocations: Callable[[], Mapping[str, tuple[JobRef, ...]]] | None = None,
        wall: Callable[[], float] | None = None,
        allocation_status: AllocationRefresher | None = None,
    ) -> None:
        self.options = options
        self._allocations = allocations  # GPU or MIG UUID -> the jobs holding it
        self._allocation_status = allocation_status
        self._clock = clock
        self._before_read = before_read  # the simulator writes its procfs here
        self._mapping = (
            HpcJobMapping(options.hpc_job_mapping_dir) if options.hpc_job_mapping_dir else None
        )
        self._pods = PodNameResolver(options.host_root) if options.host_root else None
        self._containers_now: set[str] = set()
        # wall clock: the ledger's times; by default the accounting clock when one is given
        wall = wall or (time.time if clock is time.monotonic else clock)
        self.accountant = Accountant(options.ledger_options(), clock, wall)

    def specs(self) -> Sequence[MetricSpec]:
        extra = [PROCESS_MEMORY] if self.options.per_process else []
        if self._allocation_status is not None:
            extra += job_allocations.SPECS
        return [JOB_INFO, PROCESSES, JOB_MEMORY, JOB_ENERGY, JOB_SECONDS, JOB_FLOPS, *extra]

    def samples(self, snapshot: GpuSnapshot) -> list[Sample]:
        if self._before_read is not None:
            self._before_read()
        status = self._allocation_samples(snapshot)  # before the map: "up" never outruns it
        now = self._clock()
        samples: list[Sample] = []
        self._containers_now = set()
        held = self._held()
        for reading in snapshot.readings:
            if reading.up and reading.processes is not None:
                usage = self._usage(reading, held)
                samples += self._gpu_samples(reading, usage)
                self.accountant.observe(reading, _as_held(usage), now)
            else:
                self.accountant.forget(reading.device.uuid)
        if self._pods is not None:
            self._pods.forget(self._containers_now)  # bounded by the containers on GPUs now
        return samples + status + self.accountant.finish(now)

    def _allocation_samples(self, snapshot: GpuSnapshot) -> list[Sample]:
        if self._allocation_status is None:
            return []
        return job_allocations.status_samples(self._allocation_status, snapshot)

    def _held(self) -> dict[object, list[JobRef]]:
        """Holders not seen through processes: GPU index, (index, GPU instance) or UUID -> jobs."""
        held: dict[object, list[JobRef]] = {}
        if self._mapping is not None:
            for index, ids in self._mapping.jobs().items():
                held[index] = [JobRef("slurm", job) for job in ids]
            for unit, ids in self._mapping.mig_jobs().items():
                held[unit] = [JobRef("slurm", job) for job in ids]
        if self._allocations is not None:
            for uuid, refs in self._allocations().items():
                held[uuid] = [*held.get(uuid, []), *refs]
        return held

    def _usage(
        self, reading: GpuReading, held: Mapping[object, list[JobRef]]
    ) -> dict[tuple[str, str], _Usage]:
        usage: dict[tuple[str, str], _Usage] = {}
        for process in reading.processes or []:
            ref = self._named(read_process_job(self.options.procfs, process.pid) or UNKNOWN)
            entry = usage.setdefault((ref.scheduler, ref.job), _Usage())
            entry.refs.add(ref)
            if process.memory_used_bytes is not None:
                entry.memory = (entry.memory or 0.0) + process.memory_used_bytes
            entry.sm += process.sm_utilization_ratio or 0.0
            entry.hold(process.gpu_instance, process.sm_utilization_ratio or 0.0)
        index, uuid = reading.device.index, reading.device.uuid
        units: list[tuple[int | None, list[JobRef]]] = [(None, [*held.get(index, [])])]
        units[0][1].extend(held.get(uuid, []))
        for mig in reading.mig:
            gi = mig.instance.gpu_instance
            units.append((gi, [*held.get((index, gi), []), *held.get(mig.instance.uuid, [])]))
        for unit, refs in units:
            for ref in refs:
                job_allocations.add_holder(usage, ref, _Usage).hold(unit)
        return usage

    def _named(self, ref: JobRef) -> JobRef:
        """A pod's namespace, name and container name, where the runtime's files tell them."""
        if ref.scheduler != "kubernetes" or not ref.container or self._pods is None:
            return ref
        self._containers_now.add(ref.container)
        names = self._pods.lookup(ref.container)
        if names is None:
            return ref
        container = names.container or ref.container
        return dataclasses.replace(
            ref, namespace=names.namespace, pod=names.pod, container=container
        )

    def _gpu_samples(
        self, reading: GpuReading, usage: dict[tuple[str, str], _Usage]
    ) -> list[Sample]:
        ids = (str(reading.device.index), reading.device.uuid)
        samples = [Sample(PROCESSES, ids, float(len(reading.processes or [])))]
        for (scheduler, job), entry in usage.items():
            for ref in sorted(entry.refs, key=lambda r: r.container):
                labels = (scheduler, job, ref.user, ref.namespace, ref.pod, ref.container)
                samples.append(Sample(JOB_INFO, (*ids, *labels), 1.0))
            if entry.memory is not None:
                samples.append(Sample(JOB_MEMORY, (*ids, scheduler, job), entry.memory))
        if self.options.per_process:
            samples += self._process_samples(reading, ids)
        return samples

    def _process_samples(self, reading: GpuReading, ids: tuple[str, str]) -> list[Sample]:
        known = [p for p in reading.processes or [] if p.memory_used_bytes is not None]
        top = sorted(known, key=lambda p: p.memory_used_bytes or 0.0, reverse=True)
        samples = []
        for process in top[: self.options.per_process_limit]:
            ref = read_process_job(self.options.procfs, process.pid) or UNKNOWN
            labels = (*ids, str(process.pid), ref.scheduler, ref.job)
            samples.append(Sample(PROCESS_MEMORY, labels, process.memory_used_bytes or 0.0))
        return samples

    def close(self) -> None:
        self.accountant.close()
        if self._allocation_status is not None:
            self._allocation_status.close()


def _as_held(usage: Mapping[tuple[str, str], _Usage]) -> dict[tuple[str, str], Held]:
    return {key: Held(entry.refs, entry.units) for key, entry in usage.items()}


def build(options: JobsOptions, context: Context, backend: NvmlBackend) -> JobAccounting:
    parts = context.parts
    located = dataclasses.replace(
        options,
        procfs=parts.jobs_procfs or options.procfs,
        host_root=parts.jobs_host_root or options.host_root,
        kubelet_socket=_located(parts.jobs_host_root, options.kubelet_socket),
        slurm_cgroup_root=_located(parts.jobs_host_root, options.slurm_cgroup_root),
    )
    reader = job_allocations.refresher(
        located.kubelet_socket,
        located.slurm_cgroup_root,
        located.allocation_refresh,
        located.procfs,
        located.host_root,
        inline=parts.inline,
    )
    holders = reader.holders if reader is not None else None
    return JobAccounting(
        located, before_read=parts.before_jobs_read, allocations=holders, allocation_status=reader
    )


def _located(simulated_root: str | None, path: str) -> str:
    """A node path under the simulator's root (it writes its node there); as set otherwise."""
    if not simulated_root or not path:
        return path
    return f"{simulated_root.rstrip('/')}/{path.lstrip('/')}"


VIEW = ViewKind(
    "jobs",
    "jobs",
    build,
    "Jobs (collector `jobs`, `collectors.jobs`)",
    (
        JOB_INFO,
        PROCESSES,
        JOB_MEMORY,
        JOB_ENERGY,
        JOB_SECONDS,
        JOB_FLOPS,
        PROCESS_MEMORY,
        *job_allocations.SPECS,
    ),
)
