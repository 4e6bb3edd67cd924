"""Host facts from psutil and procfs, behind an injectable procfs root (tests use fixture trees)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

_PROCFS_LOCK = threading.Lock()


@contextmanager
def _procfs(root: str) -> Iterator[None]:
    """psutil reads `psutil.PROCFS_PATH`; point it at `root` for the duration of a read."""
    with _PROCFS_LOCK:
        saved = psutil.PROCFS_PATH
        psutil.PROCFS_PATH = root
        try:
            yield
        finally:
            psutil.PROCFS_PATH = saved


@dataclass(frozen=True)
class HostReading:
    cpu_seconds: dict[str, float]
    memory_total_bytes: float
    memory_available_bytes: float
    load1: float


class HostReader:
    """Reads CPU time, memory and load from `procfs` (default `/proc`)."""

    def __init__(self, procfs: str = "/proc") -> None:
        self.procfs = procfs

    def read(self) -> HostReading:
        with _procfs(self.procfs):
            times = psutil.cpu_times()
            memory = psutil.virtual_memory()
        load1 = float((Path(self.procfs) / "loadavg").read_text().split()[0])
        return HostReading(
            cpu_seconds={mode: float(getattr(times, mode)) for mode in times._fields},
            memory_total_bytes=float(memory.total),
            memory_available_bytes=float(memory.available),
            load1=load1,
        )

    def cpu_counts(self) -> tuple[int, int]:
        """(logical, physical) CPUs, read from `cpuinfo`; physical falls back to logical."""
        text = (Path(self.procfs) / "cpuinfo").read_text()
        logical = 0
        cores: set[tuple[str, str]] = set()
        physical_id = core_id = ""
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "processor":
                logical += 1
            elif key == "physical id":
                physical_id = value
            elif key == "core id":
                core_id = value
                cores.add((physical_id, core_id))
        return logical, len(cores) or logical
