"""Who uses which GPU, and the energy each job drew: the basis of chargeback.

Each cycle, every GPU process is traced through `/proc/<pid>/cgroup` to its job (Slurm job,
Kubernetes pod, container, systemd unit or host); a scheduler's mapping directory can add jobs
per GPU. Each GPU's energy since the last cycle is split among the jobs on it by their share of
SM utilisation (equally when NVML gives no per-process samples), and the rest, on GPUs with no
job, goes to `job_id="none"`: summed over jobs, the counters equal the GPUs' energy since the
agent started. A job's counter is kept for `retention` after it was last seen.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.collectors import job_allocations
from agent.collectors.base import Context, ViewKind
from agent.hw import GpuReading, GpuSnapshot
from agent.hw.allocations import AllocationRefresher
from agent.hw.cgroups import JobRef
from agent.hw.jobs import HpcJobMapping, read_process_job
from agent.hw.pod_resources import KUBELET_SOCKET
from agent.hw.pods import PodNameResolver
from agent.metrics import MetricSpec, Sample
from agent.options import boolean, option, parse_duration, string, whole

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
JOB_ENERGY = MetricSpec(
    "suanli_job_gpu_energy_joules_total",
    "counter",
    "GPU energy drawn by the job since the agent started (job_id=none: GPUs with no job).",
    ("scheduler", "job_id"),
)
PROCESS_MEMORY = MetricSpec(
    "suanli_gpu_process_memory_used_bytes",
    "gauge",
    "GPU memory of one process (opt-in, capped).",
    (*GPU, "pid", "scheduler", "job_id"),
)
NONE = JobRef("none", "none")
UNKNOWN = JobRef("host", "unknown")  # the process vanished or its cgroup could not be read


@dataclass(frozen=True)
class JobsOptions:
    enabled: bool = option(True, boolean)
    procfs: str = option("/proc", string)
    host_root: str = option("/", string)  # the container runtimes' state (pod names); "" to skip
    hpc_job_mapping_dir: str = option("", string)
    retention: float = option(900.0, parse_duration)  # a job's counters after it was last seen
    per_process: bool = option(False, boolean)
    per_process_limit: int = option(20, whole(1, 10_000))
    # GPUs a job holds with no process on them (docs/jobs.md, "Allocation sources"); "" turns off
    kubelet_socket: str = option(KUBELET_SOCKET, string)
    slurm_cgroup_root: str = option("/sys/fs/cgroup", string)
    allocation_refresh: float = option(10.0, parse_duration)


@dataclass
class _Usage:
    """One job on one GPU this cycle."""

    refs: set[JobRef] = field(default_factory=set)  # one per container of a pod
    memory: float | None = None
    sm: float = 0.0


class JobAccounting:
    """The jobs view of the GPU collector's reading (`collector="jobs"`)."""

    name = "jobs"

    def __init__(
        self,
        options: JobsOptions,
        clock: Callable[[], float] = time.monotonic,
        before_read: Callable[[], None] | None = None,
        allocations: Callable[[], Mapping[str, tuple[JobRef, ...]]] | None = None,
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
        self._energy_seen: dict[str, float] = {}
        self._job_joules: defaultdict[tuple[str, str], float] = defaultdict(float)
        self._last_seen: dict[tuple[str, str], float] = {}

    def specs(self) -> Sequence[MetricSpec]:
        extra = [PROCESS_MEMORY] if self.options.per_process else []
        if self._allocation_status is not None:
            extra += job_allocations.SPECS
        return [JOB_INFO, PROCESSES, JOB_MEMORY, JOB_ENERGY, *extra]

    def samples(self, snapshot: GpuSnapshot) -> list[Sample]:
        if self._before_read is not None:
            self._before_read()
        mapped = self._mapping.jobs() if self._mapping is not None else {}
        status = self._allocation_samples(snapshot)  # before the map: "up" never outruns it
        holders = self._allocations() if self._allocations is not None else {}
        now = self._clock()
        samples: list[Sample] = []
        self._containers_now = set()
        for reading in snapshot.readings:
            if reading.up and reading.processes is not None:
                usage = self._usage(reading, mapped.get(reading.device.index, []))
                held = job_allocations.held(reading, holders)
                job_allocations.add_holders(usage, held, _Usage)
                samples += self._gpu_samples(reading, usage)
                self._account_energy(reading, usage, now)
        if self._pods is not None:
            self._pods.forget(self._containers_now)  # bounded by the containers on GPUs now
        return samples + status + self._energy_samples(now)

    def _allocation_samples(self, snapshot: GpuSnapshot) -> list[Sample]:
        if self._allocation_status is None:
            return []
        return job_allocations.status_samples(self._allocation_status, snapshot)

    def _usage(self, reading: GpuReading, mapped_jobs: list[str]) -> dict[tuple[str, str], _Usage]:
        usage: dict[tuple[str, str], _Usage] = {}
        for process in reading.processes or []:
            ref = self._named(read_process_job(self.options.procfs, process.pid) or UNKNOWN)
            entry = usage.setdefault((ref.scheduler, ref.job), _Usage())
            entry.refs.add(ref)
            if process.memory_used_bytes is not None:
                entry.memory = (entry.memory or 0.0) + process.memory_used_bytes
            entry.sm += process.sm_utilization_ratio or 0.0
        for job in mapped_jobs:
            usage.setdefault(("slurm", job), _Usage()).refs.add(JobRef("slurm", job))
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

    def _account_energy(
        self, reading: GpuReading, usage: dict[tuple[str, str], _Usage], now: float
    ) -> None:
        uuid, joules = reading.device.uuid, reading.energy_joules
        if joules is None:
            return
        previous = self._energy_seen.get(uuid)
        self._energy_seen[uuid] = joules
        # first sight (counters start at 0, so increase() sees the first interval), or a reset
        delta = 0.0 if previous is None or joules < previous else joules - previous
        for key, share in split(delta, {k: u.sm for k, u in usage.items()}).items():
            self._job_joules[key] += share
            self._last_seen[key] = now

    def _energy_samples(self, now: float) -> list[Sample]:
        expired = [
            k
            for k, seen in self._last_seen.items()
            if now - seen > self.options.retention and k != (NONE.scheduler, NONE.job)
        ]
        for key in expired:
            del self._last_seen[key]
            del self._job_joules[key]
        return [Sample(JOB_ENERGY, key, joules) for key, joules in sorted(self._job_joules.items())]

    def close(self) -> None:
        if self._allocation_status is not None:
            self._allocation_status.close()


def split(joules: float, weights: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """Share `joules` among jobs by weight (SM share); equally when no weight; none when no job."""
    if not weights:
        return {(NONE.scheduler, NONE.job): joules}
    total = sum(weights.values())
    if total <= 0:
        return {key: joules / len(weights) for key in weights}
    return {key: joules * weight / total for key, weight in weights.items()}


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
    (JOB_INFO, PROCESSES, JOB_MEMORY, JOB_ENERGY, PROCESS_MEMORY, *job_allocations.SPECS),
)
