"""Which workload owns a process, from the text of its `/proc/<pid>/cgroup` file.

Pure string work: no I/O, no NVML, no logging. `agent.hw.jobs` reads the files and caches.

A cgroup file has one line per hierarchy, `<id>:<controllers>:<path>`: cgroup v2 has the single
line `0::<path>`, v1 one line per controller set, hybrid systems both. Every line is classified on
its own and the most specific answer wins (Slurm job or Kubernetes pod > container > systemd unit >
host), so a v1 Slurm job in `memory` beats the login session that `name=systemd` or the unified
line still shows. Ties go to the v2 line, then to memory, cpu/cpuacct, devices, pids, name=systemd.

Path shapes recognised (components, so a cgroup-namespace view `/../../x` and a mount prefix such
as `/sys/fs/cgroup/systemd/x` work too):
- Slurm v1 `/slurm[_<node>]/uid_<uid>/job_<id>/step_<s>/task_<t>` (user = uid), Slurm v2
  `/system.slice/[<node>_]slurmstepd.scope/job_<id>/step_<s>/...`, or a bare `job_<id>/step_<s>`;
  a Slurm root without a job (slurmstepd's own `system` cgroup) is host.
- Kubernetes, cgroupfs driver `.../kubepods/[besteffort|burstable/]pod<uid>/<container-id>`, systemd
  driver `...kubepods[-qos]-pod<uid_with_underscores>.slice/<runtime>-<id>.scope` (also kind's
  `kubelet-kubepods-...`) and containerd's `...pod<uid>.slice:cri-containerd:<id>`; job = pod UID
  in dashed form, container = the 64-hex id when the path reaches a container.
- Containers outside Kubernetes: `/docker/<id>`, `docker-<id>.scope`, flat `/<id>`, `crio-`,
  `libpod-` (podman, rootless and quadlet `libpod-payload-`), `/containerd/<id>`; innermost wins.
- systemd: the innermost unit (`.service`, `.scope`, `.socket`, ...) except a root `init.scope`;
  user = `<uid>` of `user-<uid>.slice`. Everything else, including `/`, is host.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class JobRef:
    """A workload label set: `scheduler` is slurm, kubernetes, container, systemd or host."""

    scheduler: str
    job: str
    user: str = ""
    namespace: str = ""
    pod: str = ""
    container: str = ""


HOST = JobRef("host", "host")


@dataclass(frozen=True)
class CgroupLine:
    """One parsed line of a `/proc/<pid>/cgroup` file."""

    hierarchy: str
    controllers: tuple[str, ...]
    path: str

    @property
    def unified(self) -> bool:
        return self.hierarchy == "0" and not self.controllers


_LINE = re.compile(r"(\d+):([^:]*):(/.*)")
_DELETED = " (deleted)"  # v2 appends this to a cgroup that was removed while the process lives

_SLURM_ROOT = re.compile(r"slurm(?:_[\w.-]+)?|(?:[\w.-]+_)?slurmstepd\.scope")
_SLURM_JOB = re.compile(r"job_(\d+)")
_SLURM_STEP = re.compile(r"step_\w+")
_SLURM_UID = re.compile(r"uid_(\d+)")

_POD_SLICE = re.compile(r"[\w-]*kubepods[\w-]*-pod([0-9a-fA-F_]+)\.slice(?::.*)?")
_POD_DIR = re.compile(r"pod([0-9a-fA-F-]+)")
_POD_UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
_CONTAINER = re.compile(
    r"(?:.*:(?:cri-containerd|crio|cri-o|docker|containerd):"
    r"|(?:docker|cri-containerd|crio|cri-o|containerd|libpod|libpod-payload)-)?"
    r"([0-9a-f]{64})(?:\.scope)?"
)
_UNIT = re.compile(r".+\.(?:service|scope|socket|mount|swap|timer|path)")
_USER_SLICE = re.compile(r"user-(\d+)\.slice")

_RANK = {"slurm": 3, "kubernetes": 3, "container": 2, "systemd": 1, "host": 0}
_CONTROLLER_PREFERENCE = ("memory", "cpu", "cpuacct", "devices", "pids", "name=systemd")


def parse_cgroup(text: str) -> list[CgroupLine]:
    """The well-formed lines of a cgroup file; anything else is skipped."""
    lines = []
    for raw in text.splitlines():
        match = _LINE.fullmatch(raw.strip())
        if match is None:
            continue
        hierarchy, controllers, path = match.groups()
        path = path.removesuffix(_DELETED)
        lines.append(CgroupLine(hierarchy, tuple(c for c in controllers.split(",") if c), path))
    return lines


def classify_cgroup(text: str) -> JobRef:
    """The workload of a whole `/proc/<pid>/cgroup` file; host when nothing is recognised."""
    return classify_lines(parse_cgroup(text))


def classify_lines(lines: Sequence[CgroupLine]) -> JobRef:
    """The most specific workload any line names; ties go to the v2 line, then to `memory`..."""
    ordered = sorted(lines, key=_preference)
    refs = [classify_path(line.path) for line in ordered]
    return max(refs, key=lambda ref: _RANK[ref.scheduler], default=HOST)


def _preference(line: CgroupLine) -> int:
    if line.unified:
        return 0
    for position, controller in enumerate(_CONTROLLER_PREFERENCE, start=1):
        if controller in line.controllers:
            return position
    return len(_CONTROLLER_PREFERENCE) + 1


def classify_path(path: str) -> JobRef:
    """The workload a single cgroup path belongs to; never raises, host when unknown."""
    parts = [part for part in path.split("/") if part not in ("", ".", "..")]
    slurm = _slurm(parts)
    if slurm is not None:
        return slurm
    return _kubernetes(parts) or _container(parts) or _systemd(parts) or HOST


def _slurm(parts: list[str]) -> JobRef | None:
    root = _first(parts, _SLURM_ROOT)
    job = _first(parts, _SLURM_JOB)
    if job is not None:
        under_root = root is not None and root < job
        has_step = job + 1 < len(parts) and _SLURM_STEP.fullmatch(parts[job + 1]) is not None
        if under_root or has_step:
            job_id = parts[job].removeprefix("job_")
            return JobRef("slurm", job_id, user=_last_group(parts[:job], _SLURM_UID))
    return HOST if root is not None else None


def _kubernetes(parts: list[str]) -> JobRef | None:
    for index, part in enumerate(parts):
        uid = _pod_uid(part, parts[:index])
        if uid is not None:
            return JobRef("kubernetes", uid, container=_pod_container(parts[index:]))
    return None


def _pod_uid(part: str, before: list[str]) -> str | None:
    match = _POD_SLICE.fullmatch(part)
    if match is None and "kubepods" in before:
        match = _POD_DIR.fullmatch(part)
    if match is None:
        return None
    uid = match.group(1).replace("_", "-").lower()
    return uid if _POD_UID.fullmatch(uid) else None


def _pod_container(parts: list[str]) -> str:
    """The container id in the pod component (containerd's colon form) or the first one below."""
    for part in parts:
        match = _CONTAINER.fullmatch(part)
        if match is not None:
            return match.group(1)
    return ""


def _container(parts: list[str]) -> JobRef | None:
    for part in reversed(parts):
        match = _CONTAINER.fullmatch(part)
        if match is not None:
            return JobRef("container", match.group(1), user=_last_group(parts, _USER_SLICE))
    return None


def _systemd(parts: list[str]) -> JobRef | None:
    units = [part for part in parts if _UNIT.fullmatch(part) and part != "init.scope"]
    if not units:
        return None
    return JobRef("systemd", units[-1], user=_last_group(parts, _USER_SLICE))


def _first(parts: list[str], pattern: re.Pattern[str]) -> int | None:
    return next((i for i, part in enumerate(parts) if pattern.fullmatch(part)), None)


def _last_group(parts: list[str], pattern: re.Pattern[str]) -> str:
    for part in reversed(parts):
        match = pattern.fullmatch(part)
        if match is not None:
            return match.group(1)
    return ""
