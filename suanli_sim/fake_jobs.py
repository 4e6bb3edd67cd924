"""Jobs of a fake scenario: who runs on which GPU, when, and in which cgroup layout.

A scenario's optional top-level `jobs:` list; each entry becomes one `JobSpec`::

    jobs:
      - {id: "1320003", scheduler: slurm-v2, gpus: [0, 1, 2, 3]}
      - id: qwen-72b-infer
        scheduler: kubernetes          # cgroup v2, systemd driver, containerd
        namespace: llm-serving
        pod: qwen-72b-infer-7d9f8
        gpus: [4, 5]
        start: 60                      # seconds of simulated time; default 0
        end: 1800                      # default: runs forever
      - {id: "1320011", scheduler: slurm-v2, gpus: [7], idle: true, memory_mib: 18432}

Keys: `id` (str; digits for Slurm), `scheduler` (a layout in LAYOUTS), `gpus` (indexes), `start`,
`end`, `processes_per_gpu` (1; 0: holds its GPUs and runs nothing, which only the kubelet knows),
`memory_mib` per process (default: the GPU workload's memory share split among the GPU's processes),
`user` (uid, 1000), `idle` (holds memory, computes nothing), `mig` (MIG device index on each listed
GPU; required for GPUs in MIG mode), `comm` ("python3"); Kubernetes layouts also `namespace`
("default"), `pod` (the id), `pod_uid` and `container_id` (derived from seed and id), `qos`
(burstable); docker `container_id`.
The per-GPU `processes: [{pid, used_mib}]` key of older scenarios still works: such processes
are host processes that run for the whole scenario (`legacy_processes`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from suanli_sim.fake_workload import mix
from suanli_sim.fake_yaml import ScenarioError, kind_of, mapping, number, optional, typed

LAYOUTS = ("slurm-v1", "slurm-v2", "kubernetes", "kubernetes-v1", "docker", "systemd", "host")
KUBERNETES = ("kubernetes", "kubernetes-v1")
QOS_CLASSES = ("guaranteed", "burstable", "besteffort")
_COMMON = {"id", "scheduler", "gpus", "start", "end", "processes_per_gpu", "memory_mib"}
_COMMON |= {"user", "idle", "mig", "comm"}
_KEYS = {
    **{layout: _COMMON for layout in LAYOUTS},
    "kubernetes": _COMMON | {"namespace", "pod", "pod_uid", "container_id", "qos"},
    "kubernetes-v1": _COMMON | {"namespace", "pod", "pod_uid", "container_id", "qos"},
    "docker": _COMMON | {"container_id"},
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.@\\-]+")
_UNIT_SUFFIXES = (".service", ".scope")
_POD_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
MAX_COMM = 15  # TASK_COMM_LEN - 1
MAX_PROCESSES_PER_GPU = 64


@dataclass(frozen=True)
class Process:
    """A per-GPU `processes` entry of an older scenario: a host process for the whole run."""

    pid: int
    used_mib: int | None = None  # None: NVML reports the usage as not available


@dataclass(frozen=True)
class JobSpec:
    """One job of a scenario; derived fields (pod UID, container id, unit) are filled in."""

    id: str
    scheduler: str  # a layout in LAYOUTS
    gpus: tuple[int, ...]
    start: float = 0.0
    end: float | None = None  # None: forever
    processes_per_gpu: int = 1
    memory_mib: int | None = None  # per process; None: derived from the GPU's workload
    user: int = 1000
    idle: bool = False
    mig: int | None = None  # MIG device index on each GPU
    comm: str = "python3"
    namespace: str = ""
    pod: str = ""
    pod_uid: str = ""
    container_id: str = ""
    qos: str = "burstable"
    legacy: bool = False  # from a GPU's `processes` key: NVML may not know its memory

    def active(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    @property
    def unit(self) -> str:
        """The systemd unit of a `systemd` job: its id, with `.service` unless it has a suffix."""
        return self.id if self.id.endswith(_UNIT_SUFFIXES) else f"{self.id}.service"


def digest(seed: int, *parts: str) -> bytes:
    """32 stable bytes from the seed and strings (Python's own hash() is salted per run).
    Not hashlib: importing it loads OpenSSL, about 3 MiB the simulator would add to the RSS."""
    data = ":".join((str(seed), *parts)).encode()
    return b"".join(mix(word, *data).to_bytes(8, "big") for word in range(4))


def derived_uuid(seed: int, job_id: str) -> str:
    """A version-4 shaped UUID, as Kubernetes gives pods."""
    h = bytearray(digest(seed, job_id, "pod")[:16])
    h[6], h[8] = (h[6] & 0x0F) | 0x40, (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}"


def derived_container_id(seed: int, job_id: str) -> str:
    return digest(seed, job_id, "container").hex()


def parse_jobs(value: Any, seed: int, mig_counts: Sequence[int]) -> tuple[JobSpec, ...]:
    """The `jobs` key; `mig_counts[i]` is GPU i's MIG device count (0: MIG disabled)."""
    jobs = tuple(
        _job(entry, f"jobs[{i}]", seed, mig_counts)
        for i, entry in enumerate(typed(value, "jobs", list))
    )
    seen: set[tuple[str, str]] = set()
    for i, job in enumerate(jobs):
        key = (job.scheduler, job.id)
        if key in seen:
            raise ScenarioError(f'jobs[{i}].id: duplicate {job.scheduler} job "{job.id}"')
        seen.add(key)
    return jobs


def _job(entry: Any, path: str, seed: int, mig_counts: Sequence[int]) -> JobSpec:
    layout = typed(mapping(entry, path, None).get("scheduler"), f"{path}.scheduler", str)
    if layout not in LAYOUTS:
        known = ", ".join(LAYOUTS)
        raise ScenarioError(f'{path}.scheduler: unknown layout "{layout}"; known: {known}')
    raw = mapping(entry, path, _KEYS[layout])
    if "id" not in raw or "gpus" not in raw:
        raise ScenarioError(f"{path}.{'id' if 'id' not in raw else 'gpus'}: required")
    job_id = _job_id(raw["id"], f"{path}.id", layout)
    start = number(raw.get("start", 0), f"{path}.start")
    end = None if raw.get("end") is None else number(raw["end"], f"{path}.end")
    if start < 0:
        raise ScenarioError(f"{path}.start: must not be negative, got {start}")
    if end is not None and end <= start:
        raise ScenarioError(f"{path}.end: {end} is not after start ({start})")
    mig = optional(raw.get("mig"), f"{path}.mig", int)
    return JobSpec(
        id=job_id,
        scheduler=layout,
        gpus=_gpus(raw["gpus"], f"{path}.gpus", mig_counts, mig),
        start=start,
        end=end,
        processes_per_gpu=_per_gpu(raw.get("processes_per_gpu", 1), f"{path}.processes_per_gpu"),
        memory_mib=_memory(raw.get("memory_mib"), f"{path}.memory_mib"),
        user=_uid(raw.get("user", 1000), f"{path}.user"),
        idle=typed(raw.get("idle", False), f"{path}.idle", bool),
        mig=mig,
        comm=_comm(raw.get("comm", "python3"), f"{path}.comm"),
        **_container_fields(raw, path, layout, seed, job_id),
    )


def _job_id(value: Any, path: str, layout: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    job_id: str = typed(value, path, str)
    if not job_id or any(c.isspace() or c == "/" for c in job_id):
        raise ScenarioError(f"{path}: {job_id!r} must be non-empty, without spaces or '/'")
    if layout.startswith("slurm") and not job_id.isdigit():
        raise ScenarioError(f'{path}: a Slurm job id is a number, got "{job_id}"')
    if layout == "systemd" and not _UNIT_NAME.fullmatch(job_id):
        raise ScenarioError(f'{path}: "{job_id}" is not a systemd unit name')
    return job_id


def _gpus(value: Any, path: str, mig_counts: Sequence[int], mig: int | None) -> tuple[int, ...]:
    gpus = typed(value, path, list)
    if not gpus:
        raise ScenarioError(f"{path}: at least one GPU is required")
    for i, gpu in enumerate(gpus):
        typed(gpu, f"{path}[{i}]", int)
        if not 0 <= gpu < len(mig_counts):
            raise ScenarioError(f"{path}[{i}]: GPU {gpu} does not exist ({len(mig_counts)} GPUs)")
        if gpu in gpus[:i]:
            raise ScenarioError(f"{path}[{i}]: GPU {gpu} is listed twice")
        _check_mig(f"{path}[{i}]", gpu, mig_counts[gpu], mig)
    return tuple(gpus)


def _check_mig(path: str, gpu: int, count: int, mig: int | None) -> None:
    if mig is None and count:
        raise ScenarioError(f"{path}: GPU {gpu} is in MIG mode; give the job a MIG device (mig)")
    if mig is not None and not count:
        raise ScenarioError(f"{path}: GPU {gpu} is not in MIG mode; drop the job's mig key")
    if mig is not None and not 0 <= mig < count:
        raise ScenarioError(f"{path}: GPU {gpu} has no MIG device {mig} ({count} MIG devices)")


def _at_least(value: Any, path: str, low: int = 1) -> int:
    number_: int = typed(value, path, int)
    if number_ < low:
        raise ScenarioError(f"{path}: must be at least {low}, got {number_}")
    return number_


def _per_gpu(value: Any, path: str) -> int:
    count = _at_least(value, path, low=0)  # 0: holds the GPUs, runs nothing (yet)
    if count > MAX_PROCESSES_PER_GPU:
        raise ScenarioError(f"{path}: at most {MAX_PROCESSES_PER_GPU}, got {count}")
    return count


def _memory(value: Any, path: str) -> int | None:
    return None if value is None else _at_least(value, path)


def _uid(value: Any, path: str) -> int:
    return _at_least(value, path, 0)


def _comm(value: Any, path: str) -> str:
    comm: str = typed(value, path, str)
    if not 0 < len(comm) <= MAX_COMM or "\n" in comm:
        raise ScenarioError(f"{path}: a process name has 1 to {MAX_COMM} characters, got {comm!r}")
    return comm


def _container_fields(
    raw: dict[str, Any], path: str, layout: str, seed: int, job_id: str
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if layout in KUBERNETES or layout == "docker":
        fields["container_id"] = _matching(
            raw.get("container_id"), f"{path}.container_id", _HEX64, "64 lower-case hex digits"
        ) or derived_container_id(seed, job_id)
    if layout in KUBERNETES:
        fields["pod_uid"] = _matching(
            raw.get("pod_uid"), f"{path}.pod_uid", _UUID, "a lower-case 8-4-4-4-12 UUID"
        ) or derived_uuid(seed, job_id)
        fields["namespace"] = _matching(
            raw.get("namespace", "default"), f"{path}.namespace", _POD_NAME, "a DNS label"
        )
        fields["pod"] = _matching(raw.get("pod", job_id), f"{path}.pod", _POD_NAME, "a DNS name")
        qos = typed(raw.get("qos", "burstable"), f"{path}.qos", str)
        if qos not in QOS_CLASSES:
            known = ", ".join(QOS_CLASSES)
            raise ScenarioError(f'{path}.qos: unknown QoS class "{qos}"; known: {known}')
        fields["qos"] = qos
    return fields


def _matching(value: Any, path: str, pattern: re.Pattern[str], what: str) -> str:
    if value is None:
        return ""
    text: str = typed(value, path, str)
    if not pattern.fullmatch(text):
        raise ScenarioError(f"{path}: expected {what}, got {kind_of(text)} {text!r}")
    return text


def parse_processes(value: Any, path: str) -> tuple[Process, ...]:
    """A GPU's legacy `processes` key."""
    out = []
    for i, item in enumerate(typed(value, path, list)):
        raw = mapping(item, f"{path}[{i}]", {"pid", "used_mib"})
        if "pid" not in raw:
            raise ScenarioError(f"{path}[{i}].pid: required")
        out.append(
            Process(
                typed(raw["pid"], f"{path}[{i}].pid", int),
                optional(raw.get("used_mib"), f"{path}[{i}].used_mib", int),
            )
        )
    return tuple(out)
