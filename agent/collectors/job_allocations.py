"""Allocation-aware attribution for the jobs view: a GPU a pod or a Slurm job holds is that job's,
whether or not a process of it runs there yet.

`agent.hw.allocations` keeps the map (GPU or MIG UUID -> jobs) fresh on its own thread; the jobs
view adds the holders of each GPU to the jobs its processes name (`add_holder`), and reports
each source's state and which GPUs the kubelet can give to pods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, MutableMapping
from typing import Protocol, TypeVar

from agent.hw import GpuReading, GpuSnapshot
from agent.hw.allocations import AllocationRefresher
from agent.hw.cgroups import JobRef
from agent.hw.pod_resources import PodResourcesClient
from agent.hw.slurm_devices import SlurmCgroupDevices
from agent.metrics import MetricSpec, Sample

SOURCE_UP = MetricSpec(
    "suanli_job_allocation_source_up",
    "gauge",
    "1 when the source of GPU allocations (kubelet, slurm_cgroup) was read; 0: jobs come from "
    "the GPUs' processes alone, and reason says why.",
    ("source", "reason"),
)
KUBELET_ALLOCATABLE = MetricSpec(
    "suanli_gpu_kubelet_allocatable",
    "gauge",
    "1 when the kubelet can give the GPU to pods (the device plugin lists it as healthy), 0 "
    "when it cannot; absent when the kubelet is not read.",
    ("gpu", "uuid"),
)
SPECS = (SOURCE_UP, KUBELET_ALLOCATABLE)
Holders = Mapping[str, tuple[JobRef, ...]]
_CALL_TIMEOUT_S = 1.0  # one kubelet call; the kubelet answers in milliseconds


def refresher(
    kubelet_socket: str,
    slurm_cgroup_root: str,
    interval_s: float,
    procfs: str,
    host_root: str,
    inline: bool = False,
) -> AllocationRefresher | None:
    """The background reader the options ask for, started; None when both sources are off."""
    if not kubelet_socket and not slurm_cgroup_root:
        return None
    kubelet = PodResourcesClient(kubelet_socket, _CALL_TIMEOUT_S) if kubelet_socket else None
    slurm = SlurmCgroupDevices(slurm_cgroup_root, procfs) if slurm_cgroup_root else None
    log_root = f"{host_root.rstrip('/')}/var/log/pods" if host_root else ""
    reader = AllocationRefresher(kubelet, slurm, interval_s, log_root, inline=inline)
    reader.start()
    return reader


def held(reading: GpuReading, holders: Holders) -> tuple[JobRef, ...]:
    """The jobs holding the GPU or one of its MIG instances (by UUID, or by NVML index)."""
    ids = [reading.device.uuid, str(reading.device.index)]
    ids += [mig.instance.uuid for mig in reading.mig]
    found: list[JobRef] = []
    for device_id in ids:
        found += [ref for ref in holders.get(device_id, ()) if ref not in found]
    return tuple(found)


class _HasRefs(Protocol):
    refs: set[JobRef]


U = TypeVar("U", bound=_HasRefs)


def add_holder(usage: MutableMapping[tuple[str, str], U], ref: JobRef, new: Callable[[], U]) -> U:
    """One holder's entry in `usage`: the pod its processes already name, or a new job."""
    by_pod = {
        (known.namespace, known.pod): key
        for key, entry in usage.items()
        for known in entry.refs
        if known.scheduler == "kubernetes" and known.pod
    }
    key = by_pod.get((ref.namespace, ref.pod), (ref.scheduler, ref.job))
    entry = usage.setdefault(key, new())
    entry.refs -= {r for r in entry.refs if _less_named(r, ref)}
    entry.refs.add(dataclasses.replace(ref, job=key[1]))
    return entry


def _less_named(known: JobRef, holder: JobRef) -> bool:
    """A process's ref the holder's names replace: a pod without names, a Slurm job (from the
    mapping directory or a cgroup v2 path) without the uid its device cgroup gives."""
    if holder.scheduler == "kubernetes":
        return known.scheduler == "kubernetes" and not known.pod
    return known.scheduler == holder.scheduler and not known.user and bool(holder.user)


def status_samples(reader: AllocationRefresher, snapshot: GpuSnapshot) -> list[Sample]:
    samples = [
        Sample(SOURCE_UP, (source, state.reason), 1.0 if state.up else 0.0)
        for source, state in sorted(reader.states().items())
    ]
    allocatable = reader.allocatable()
    if allocatable is None:
        return samples
    for reading in snapshot.readings:
        ids = {reading.device.uuid, str(reading.device.index)}
        ids |= {mig.instance.uuid for mig in reading.mig}
        value = 1.0 if ids & allocatable else 0.0
        samples.append(
            Sample(KUBELET_ALLOCATABLE, (str(reading.device.index), reading.device.uuid), value)
        )
    return samples
