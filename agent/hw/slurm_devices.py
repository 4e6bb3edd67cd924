"""Which Slurm job holds which GPU, from the cgroup v1 devices controller.

With `ConstrainDevices=yes`, Slurm's task/cgroup plugin gives each job a devices cgroup
(`<root>/devices/slurm[_<node>]/uid_<uid>/job_<id>/`) whose `devices.list` names the character
devices the job may open: `c 195:<minor> rwm` for each GPU it was given (`/dev/nvidia<minor>`;
195 is the NVIDIA driver's major, minors 254 and 255 are nvidia-modeset and nvidiactl). A list
that allows everything (`a *:* rwm`) does not say which GPUs, so such a job adds nothing.

The minor is not the NVML index: the driver says which GPU has which minor in
`<procfs>/driver/nvidia/gpus/<bus id>/information` (`Device Minor:` and `GPU UUID:`).

cgroup v2 has no device list (devices are filtered by eBPF programs, which cannot be read
back as a list), so on cgroup v2 the job's GPUs come from the prolog's mapping directory
(`agent.hw.jobs.HpcJobMapping`) and this source says `cgroup_v2`.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

from agent.hw.cgroups import JobRef

NVIDIA_MAJOR = 195
_CONTROL_MINORS = (254, 255)  # nvidia-modeset, nvidiactl
_RULE = re.compile(r"c (\d+):(\d+|\*) [rwm]+")
_SLURM_DIR = re.compile(r"slurm(?:_[\w.-]+)?")
_UID_DIR = re.compile(r"uid_(\d+)")
_JOB_DIR = re.compile(r"job_(\d+)")
_MAX_FILE = 64 * 1024


class SlurmDevicesUnavailable(Exception):
    """No Slurm job can be read here; `reason` says why (for the status metric)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def gpu_minors(procfs: str) -> dict[int, str]:
    """Device minor -> GPU UUID, from the driver's `information` file of each GPU."""
    base = Path(procfs) / "driver" / "nvidia" / "gpus"
    try:
        buses = sorted(os.listdir(base))
    except OSError:
        return {}
    found: dict[int, str] = {}
    for bus in buses:
        fields = _fields(_read(base / bus / "information"))
        minor, uuid = fields.get("Device Minor", ""), fields.get("GPU UUID", "")
        if minor.isdigit() and uuid.startswith("GPU-"):
            found[int(minor)] = uuid
    return found


def device_minors(text: str) -> set[int] | None:
    """The NVIDIA GPU minors a `devices.list` allows; None when it allows every device."""
    minors: set[int] = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("a "):
            return None
        match = _RULE.fullmatch(line)
        if match is None or int(match.group(1)) != NVIDIA_MAJOR:
            continue
        if match.group(2) == "*":
            return None  # every NVIDIA device: says nothing about which GPU
        if int(match.group(2)) not in _CONTROL_MINORS:
            minors.add(int(match.group(2)))
    return minors


class SlurmCgroupDevices:
    """Reads every Slurm job's device list under the cgroup root on each call."""

    def __init__(self, cgroup_root: str = "/sys/fs/cgroup", procfs: str = "/proc") -> None:
        self.root = Path(cgroup_root)
        self.procfs = procfs

    def read(self) -> dict[str, tuple[JobRef, ...]]:
        """GPU UUID -> the Slurm jobs whose device list allows it.

        Raises `SlurmDevicesUnavailable("cgroup_v2")` where Slurm runs on cgroup v2 and
        `SlurmDevicesUnavailable("no_slurm")` where no Slurm hierarchy exists at all.
        """
        jobs = self._job_dirs()
        minors = gpu_minors(self.procfs) if jobs else {}
        found: defaultdict[str, list[JobRef]] = defaultdict(list)
        for ref, path in jobs:
            allowed = device_minors(_read(path / "devices.list"))
            for minor in sorted(allowed or ()):
                uuid = minors.get(minor)
                if uuid is not None and ref not in found[uuid]:
                    found[uuid].append(ref)
        return {uuid: tuple(refs) for uuid, refs in found.items()}

    def _job_dirs(self) -> list[tuple[JobRef, Path]]:
        devices = self.root / "devices"
        roots = [p for p in _listdir(devices) if _SLURM_DIR.fullmatch(p.name)]
        if not roots:
            raise SlurmDevicesUnavailable(self._why_not())
        jobs = []
        for root in roots:
            for user in _listdir(root):
                uid = _UID_DIR.fullmatch(user.name)
                if uid is None:
                    continue
                for job in _listdir(user):
                    match = _JOB_DIR.fullmatch(job.name)
                    if match is not None:
                        jobs.append((JobRef("slurm", match.group(1), user=uid.group(1)), job))
        return jobs

    def _why_not(self) -> str:
        if (self.root / "cgroup.controllers").exists():
            slices = _listdir(self.root / "system.slice")
            if any(p.name.endswith("slurmstepd.scope") for p in slices):
                return "cgroup_v2"
        return "no_slurm"


def _listdir(path: Path) -> list[Path]:
    try:
        return sorted(entry for entry in path.iterdir() if entry.is_dir())
    except OSError:
        return []


def _read(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(_MAX_FILE).decode("utf-8", "replace")
    except OSError:
        return ""


def _fields(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            found[key.strip()] = value.strip()
    return found
