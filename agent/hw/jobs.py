"""Job attribution: a GPU process's pid -> its workload, and dcgm-exporter's HPC job-mapping dir.

Pure reading of procfs and plain files: no NVML, no Prometheus, no logging. The collector that
wires this in counts the `None` answers as "unknown" and logs once; nothing here raises for I/O.

`read_process_job` reads `<proc_root>/<pid>/cgroup` (classified by `agent.hw.cgroups`) and caches
the answer under (pid, start time), the start time being field 22 of `<proc_root>/<pid>/stat` in
clock ticks since boot. A reused pid has a different start time, so it is read afresh and never
inherits the previous process's job. Entries expire after `ttl_s` so a process that is moved to
another cgroup after its first read (pam_slurm_adopt, `systemd-run --scope`) is re-attributed.

`HpcJobMapping` reads the directory that dcgm-exporter's `--hpc-job-mapping-dir` reads, written in
practice by a Slurm prolog (and cleared by the epilog): one file per GPU, named by its index (`0`,
`1`, ...) or `<gpu>.<gpu-instance>` for a MIG instance, holding job ids one per line. The caller
turns each id into `JobRef("slurm", id)`.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from agent.hw.cgroups import HOST, JobRef, classify_cgroup, classify_lines, parse_cgroup

__all__ = [
    "HOST",
    "HpcJobMapping",
    "JobCache",
    "JobRef",
    "classify_cgroup",
    "process_start_time",
    "read_process_job",
]

_MAX_PROC_FILE = 64 * 1024
_STARTTIME_AFTER_COMM = 19  # stat field 22; fields after "(comm)" start at field 3


class JobCache:
    """A bounded LRU of (pid directory, start time) -> JobRef whose entries live `ttl_s`."""

    def __init__(
        self,
        max_entries: int = 4096,
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[tuple[str, int], tuple[JobRef, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> JobRef | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._clock() - entry[1] > self.ttl_s:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: tuple[str, int], ref: JobRef) -> None:
        with self._lock:
            now = self._clock()
            self._entries[key] = (ref, now)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            self._drop_expired(now)

    def _drop_expired(self, now: float) -> None:
        """Exited processes are never asked for again: they sink to the front and expire there."""
        while self._entries:
            _, (_, stored) = next(iter(self._entries.items()))
            if now - stored <= self.ttl_s:
                return
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


_DEFAULT_CACHE = JobCache()


def read_process_job(
    proc_root: str | Path, pid: int, cache: JobCache | None = None
) -> JobRef | None:
    """The workload of `pid`; None when the process vanished or its cgroup file is unreadable.

    Never raises for I/O problems and never logs. Uses a process-wide cache unless given one.
    """
    if pid <= 0:
        return None
    cache = _DEFAULT_CACHE if cache is None else cache
    base = f"{os.fspath(proc_root)}/{pid}"  # plain strings: pathlib interns every pid it sees
    started = process_start_time(base)
    key = (base, started) if started is not None else None
    if key is not None:
        cached = cache.get(key)
        if cached is not None:
            return cached
    text = _read_text(f"{base}/cgroup", _MAX_PROC_FILE)
    lines = parse_cgroup(text) if text is not None else []
    if not lines:
        return None
    ref = classify_lines(lines)
    if key is not None and process_start_time(base) == started:
        cache.put(key, ref)  # the same process before and after the read: safe to remember
    return ref


def process_start_time(pid_dir: str | Path) -> int | None:
    """Field 22 of `<pid_dir>/stat` (start time in clock ticks after boot), None if unreadable."""
    text = _read_text(f"{os.fspath(pid_dir)}/stat", _MAX_PROC_FILE)
    if text is None:
        return None
    _, paren, rest = text.rpartition(")")  # comm may itself contain spaces and parentheses
    fields = rest.split()
    if not paren or len(fields) <= _STARTTIME_AFTER_COMM:
        return None
    value = fields[_STARTTIME_AFTER_COMM]
    return int(value) if value.isdigit() else None


def _read_text(path: str | Path, limit: int) -> str | None:
    """At most `limit` bytes of `path` as UTF-8; None when it cannot be read or decoded."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError):  # vanished (ENOENT, ESRCH), EACCES, EISDIR, bad bytes
        return None


_GPU_NAME = re.compile(r"0|[1-9]\d*")  # as dcgm-exporter matches names: "01" is not GPU 1
_MIG_NAME = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)")
_JOB_ID = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII without spaces
_MAX_MAPPING_FILE = 64 * 1024

_Signature = tuple[int, int, int]  # (mtime_ns, size, inode) of a mapping file


class HpcJobMapping:
    """dcgm-exporter's `--hpc-job-mapping-dir`: GPU index -> job ids, re-read cheaply each call.

    Every call lists the directory and stats its files; a file is only read again when its
    mtime, size or inode changed. Differences from dcgm-exporter, which takes each line verbatim
    and fails the whole directory on one unreadable file: lines are stripped and blank ones
    skipped, only the first word of a line is the id (tolerating `<job> <uid>` lines some sites
    write), duplicates are dropped in order, and unreadable, oversized, non-UTF-8 or non-regular
    files are skipped alone. A GPU whose file holds no job is absent, as dcgm-exporter leaves
    such a GPU's metrics without a job label. A missing or unreadable directory gives `{}`.
    A file that could not be read is not retried until it changes. Not thread-safe: meant for
    the one collector that owns it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._files: dict[str, tuple[_Signature, list[str]]] = {}

    def jobs(self) -> dict[int, list[str]]:
        """Whole-GPU files: GPU index -> job ids in file order."""
        scanned = self._scan().items()
        return {int(name): list(ids) for name, ids in scanned if _GPU_NAME.fullmatch(name)}

    def mig_jobs(self) -> dict[tuple[int, int], list[str]]:
        """MIG files named `<gpu>.<gpu-instance>`: (GPU index, GPU instance id) -> job ids."""
        found: dict[tuple[int, int], list[str]] = {}
        for name, ids in self._scan().items():
            match = _MIG_NAME.fullmatch(name)
            if match is not None:
                found[(int(match.group(1)), int(match.group(2)))] = list(ids)
        return found

    def _scan(self) -> dict[str, list[str]]:
        try:
            with os.scandir(self.path) as listing:
                entries = [entry for entry in listing if _is_mapping_name(entry.name)]
        except OSError:
            self._files.clear()
            return {}
        names = {entry.name for entry in entries}
        self._files = {name: known for name, known in self._files.items() if name in names}
        found: dict[str, list[str]] = {}
        for entry in entries:
            ids = self._file_jobs(entry)
            if ids:
                found[entry.name] = ids
        return found

    def _file_jobs(self, entry: os.DirEntry[str]) -> list[str]:
        try:
            info = entry.stat()
        except OSError:
            return []
        if not stat.S_ISREG(info.st_mode):
            return []  # a directory, or a FIFO that would block the reader
        signature = (info.st_mtime_ns, info.st_size, info.st_ino)
        cached = self._files.get(entry.name)
        if cached is not None and cached[0] == signature:
            return cached[1]
        ids = _read_job_ids(Path(entry.path)) if info.st_size <= _MAX_MAPPING_FILE else []
        self._files[entry.name] = (signature, ids)
        return ids


def _is_mapping_name(name: str) -> bool:
    return _GPU_NAME.fullmatch(name) is not None or _MIG_NAME.fullmatch(name) is not None


def _read_job_ids(path: Path) -> list[str]:
    """Job ids of one mapping file, first word of each non-blank line, deduplicated in order."""
    text = _read_text(path, _MAX_MAPPING_FILE)
    ids: list[str] = []
    for line in (text or "").splitlines():
        words = line.split()
        if words and _JOB_ID.fullmatch(words[0]) and words[0] not in ids:
            ids.append(words[0])
    return ids
