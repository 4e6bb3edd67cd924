"""A fake procfs for a scenario's jobs: `<root>/<pid>/{cgroup,stat,comm,status}` of processes.

`write_procfs(scenario, root, t)` makes the tree under `root` match simulated time t: a
directory per process of every job active at t, and none for other pids (a process whose job
ended vanishes, as from /proc). Files are only written when their content differs, each
atomically (a temporary file renamed), `stat` last. `FakeProcfs(scenario, root, clock).sync()`
does the same at `clock()` and skips the work when the set of processes has not changed.

`/proc/<pid>/cgroup` per layout, with the lines of the captures in ../shared/reference/cgroup:
- slurm-v2: `0::/system.slice/slurmstepd.scope/job_<id>/step_0/user/task_<n>` (ceems,
  cgroup_exporter);
- slurm-v1: the 12 controllers of the ceems job-level capture; memory and cpu,cpuacct at task
  level (the cgroup_exporter hierarchy has `task_<n>` only there), freezer, devices and cpuset
  at step level (cpuset: as in that hierarchy; freezer, devices: assumed), net_cls,net_prio at job
  level, pids and name=systemd in the user's session scope, the rest `/` (as captured);
- kubernetes: `0::/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/
  cri-containerd-<id>.scope` (k8s-v2 containerd, crio-1.22 for burstable; guaranteed pods have no
  QoS slice, as Kepler's OpenShift line);
- kubernetes-v1: the 11 controllers of k8s-v1-cgroupfs-docker, `/kubepods/<qos>/pod<uid>/<id>`;
- docker: `0::/system.slice/docker-<id>.scope`; systemd: `0::/system.slice/<unit>` (not
  captured verbatim); host: `0::/user.slice/user-<uid>.slice/session-<n>.scope` (ssh login).
`stat` is a 52-field Linux line whose field 22 (starttime) is boot + job start + a few ticks;
`status` has the identity lines (Uid: the job's `user`, which Slurm v2 paths do not carry).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from suanli_sim.fake_jobs import JobSpec, digest
from suanli_sim.fake_processes import FakeProcess, scenario_processes
from suanli_sim.fake_scenario import Scenario

_V1_K8S = (  # k8s-v1-cgroupfs-docker__neuvector.txt, in its order
    "11:devices",
    "10:memory",
    "9:hugetlb",
    "8:perf_event",
    "7:freezer",
    "6:pids",
    "5:cpu,cpuacct",
    "4:cpuset",
    "3:blkio",
    "2:net_cls,net_prio",
    "1:name=systemd",
)


def session(seed: int, job: JobSpec) -> int:
    return 1 + int.from_bytes(digest(seed, job.id, "session")[:4], "big") % 400


def cgroup_text(proc: FakeProcess, seed: int) -> str:
    """The content of /proc/<pid>/cgroup for a process, per its job's layout."""
    job = proc.job
    user_scope = f"/user.slice/user-{job.user}.slice/session-{session(seed, job)}.scope"
    if job.scheduler == "slurm-v2":
        return f"0::/system.slice/slurmstepd.scope/job_{job.id}/step_0/user/task_{proc.task}\n"
    if job.scheduler == "slurm-v1":
        return _slurm_v1(proc, user_scope)
    if job.scheduler == "kubernetes":
        uid, cid = job.pod_uid.replace("-", "_"), job.container_id
        if job.qos == "guaranteed":
            return f"0::/kubepods.slice/kubepods-pod{uid}.slice/cri-containerd-{cid}.scope\n"
        qos = f"kubepods-{job.qos}"
        pod = f"{qos}-pod{uid}.slice/cri-containerd-{cid}.scope"
        return f"0::/kubepods.slice/{qos}.slice/{pod}\n"
    if job.scheduler == "kubernetes-v1":
        qos = "" if job.qos == "guaranteed" else f"/{job.qos}"
        path = f"/kubepods{qos}/pod{job.pod_uid}/{job.container_id}"
        return "".join(f"{controllers}:{path}\n" for controllers in _V1_K8S)
    if job.scheduler == "docker":
        return f"0::/system.slice/docker-{job.container_id}.scope\n"
    if job.scheduler == "systemd":
        return f"0::/system.slice/{job.unit}\n"
    return f"0::{user_scope}\n"


def _slurm_v1(proc: FakeProcess, user_scope: str) -> str:
    job_dir = f"/slurm/uid_{proc.job.user}/job_{proc.job.id}"
    step, task = f"{job_dir}/step_0", f"{job_dir}/step_0/task_{proc.task}"
    lines = (  # slurm-v1-job-level__ceems.txt's controllers and numbering
        f"12:freezer:{step}",
        "11:hugetlb:/",
        "10:blkio:/",
        f"9:cpu,cpuacct:{task}",
        "8:perf_event:/",
        f"7:devices:{step}",
        f"6:memory:{task}",
        f"5:net_cls,net_prio:{job_dir}",
        f"4:cpuset:{step}",
        "3:rdma:/",
        f"2:pids:{user_scope}",
        f"1:name=systemd:{user_scope}",
    )
    return "".join(line + "\n" for line in lines)


def stat_text(proc: FakeProcess) -> str:
    """A /proc/<pid>/stat line (Linux 5.x/6.x, 52 fields) of a sleeping multi-threaded process.
    Field 22 is the start time; the other numbers are typical values, not captured."""
    h = int.from_bytes(digest(proc.pid, "stat")[:8], "big")
    threads = 24 + h % 40
    vsize = (30 + h % 20) * 1024**3  # CUDA reserves a large virtual address space
    rss = 900_000 + h % 600_000  # pages
    head = (
        f"{proc.pid} ({proc.job.comm}) S {proc.ppid} {proc.pid} {proc.ppid} 0 -1 4194560 "
        f"{200_000 + h % 90_000} 0 {h % 300} 0 {1200 + h % 500} {300 + h % 200} 0 0 20 0 "
        f"{threads} 0 {proc.starttime} {vsize} {rss} 18446744073709551615"
    )
    tail = (
        "94366144856064 94366147731693 140727009576592 0 0 0 0 16781312 134235650 0 0 0 17 "
        f"{h % 64} 0 0 0 0 0 94366148533168 94366149025288 94366172385280 140727009584127 "
        "140727009584186 140727009584186 140727009587178 0"
    )
    return f"{head} {tail}\n"


def status_text(proc: FakeProcess) -> str:
    """The identity lines of /proc/<pid>/status (a subset: no Vm*, Sig*, Cap* lines). A
    container's process also has its pid in the container's namespace (NSpid's second value)."""
    uid, pid, threads = proc.job.user, proc.pid, stat_text(proc).split()[19]
    inner = (
        f"\t{1 + 2 * proc.task}"
        if proc.job.scheduler in ("kubernetes", "kubernetes-v1", "docker")
        else ""
    )
    lines = (
        f"Name:\t{proc.job.comm}",
        "Umask:\t0022",
        "State:\tS (sleeping)",
        f"Tgid:\t{pid}",
        "Ngid:\t0",
        f"Pid:\t{pid}",
        f"PPid:\t{proc.ppid}",
        "TracerPid:\t0",
        f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}",
        f"Gid:\t{uid}\t{uid}\t{uid}\t{uid}",
        "FDSize:\t256",
        f"Groups:\t{uid} ",
        f"NStgid:\t{pid}{inner}",
        f"NSpid:\t{pid}{inner}",
        f"NSpgid:\t{pid}{inner}",
        f"NSsid:\t{proc.ppid}",
        f"Threads:\t{threads}",
    )
    return "".join(line + "\n" for line in lines)


def process_files(proc: FakeProcess, seed: int) -> dict[str, str]:
    """File name -> content of one process's directory, `stat` last."""
    comm = proc.job.comm + "\n"
    return {
        "comm": comm,
        "status": status_text(proc),
        "cgroup": cgroup_text(proc, seed),
        "stat": stat_text(proc),
    }


CONTAINERD_TASKS = "run/containerd/io.containerd.runtime.v2.task/k8s.io"


def write_procfs(scenario: Scenario, root: str | Path, t: float) -> None:
    """Make `root` hold the procfs entries of the processes running at simulated time t."""
    FakeProcfs(scenario, root).sync(t)


class FakeProcfs:
    """A procfs tree under `root` that follows a scenario's jobs over simulated time."""

    def __init__(
        self, scenario: Scenario, root: str | Path, clock: Callable[[], float] | None = None
    ) -> None:
        self.seed = scenario.seed
        self.root = Path(root)
        self.clock = clock or (lambda: 0.0)
        self.processes = scenario_processes(scenario)
        self._written: frozenset[int] | None = None

    def sync(self, t: float | None = None) -> None:
        """Bring the tree up to date with time t (default: `clock()`)."""
        now = self.clock() if t is None else t
        active = {p.pid: p for p in self.processes if p.active(now)}
        if self._written == frozenset(active) and self.root.is_dir():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with os.scandir(self.root) as listing:
            stale = [e.path for e in listing if e.name.isdigit() and int(e.name) not in active]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        for pid, proc in active.items():
            folder = self.root / str(pid)
            folder.mkdir(exist_ok=True)
            for name, text in process_files(proc, self.seed).items():
                _write_if_changed(folder / name, text)
        self._written = frozenset(active)


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_runtime_state(scenario: Scenario, host_root: str | Path) -> None:
    """containerd's OCI bundle of each simulated Kubernetes container, with the annotations the
    CRI plugin writes there, so the agent can name namespace, pod and container."""
    for job in scenario.jobs:
        if not job.scheduler.startswith("kubernetes") or not job.container_id:
            continue
        bundle = Path(host_root) / CONTAINERD_TASKS / job.container_id
        bundle.mkdir(parents=True, exist_ok=True)
        annotations = {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-id": job.pod_uid.replace("-", ""),
            "io.kubernetes.cri.sandbox-namespace": job.namespace or "default",
            "io.kubernetes.cri.sandbox-name": job.pod or job.id,
            "io.kubernetes.cri.container-name": job.comm,
        }
        document = {"ociVersion": "1.1.0", "annotations": annotations}
        _write_if_changed(bundle / "config.json", json.dumps(document, indent=1))
