"""The machine and the code a benchmark ran on: CPU, memory, Python, kernel, git commit."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _first_value(path: str, key: str) -> str | None:
    """The value of the first `key: value` line of a /proc file, or None."""
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def cpu_model() -> str:
    return _first_value("/proc/cpuinfo", "model name") or platform.processor() or "unknown"


def memory_gib() -> float | None:
    total = _first_value("/proc/meminfo", "MemTotal")  # "24579828 kB"
    if total is None:
        return None
    return round(int(total.split()[0]) / 1024 / 1024, 1)


def _git(*args: str) -> str | None:
    """A read-only git command (no optional locks, so it never touches the index)."""
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_commit() -> str:
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    changes = _git("status", "--porcelain", "--untracked-files=no")
    return f"{commit}+dirty" if changes else commit


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe() -> dict[str, Any]:
    """Everything that identifies where and on what a run happened."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "python": platform.python_version(),
        "kernel": f"{platform.system()} {platform.release()}",
    }
