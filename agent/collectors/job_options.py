"""The jobs view's options (`collectors.jobs`): where processes, pods and schedulers are read,
how long an ended job's counters stay, and the job ledger's file, rotation and checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

from agent.collectors.job_counters import LedgerOptions
from agent.hw.pod_resources import KUBELET_SOCKET
from agent.options import DIRECTORY, boolean, option, parse_duration, path_option, string, whole


def _fraction(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"must be a number from 0 to 1, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class JobsOptions:
    enabled: bool = option(True, boolean)
    procfs: str = path_option("/proc", DIRECTORY)
    # the container runtimes' state (pod names); "" to skip
    host_root: str = path_option("/", DIRECTORY)
    hpc_job_mapping_dir: str = path_option("", DIRECTORY)
    retention: float = option(3600.0, parse_duration)  # an ended job's counters stay this long
    per_process: bool = option(False, boolean)
    per_process_limit: int = option(20, whole(1, 10_000))
    ended_after: float = option(60.0, parse_duration)  # not seen this long: the job ended
    idle_below: float = option(0.05, _fraction)  # SM activity at most this: the GPU is idle
    ledger: str = option("", string)  # JSON lines of ended jobs; "" off
    ledger_max_bytes: int = option(64 << 20, whole(4096, 1 << 40))  # then rotated
    ledger_keep: int = option(5, whole(0, 1000))  # rotated files kept
    state_file: str = option("", string)  # checkpoint; "" = <ledger>.state when a ledger is kept
    checkpoint_interval: float = option(1.0, parse_duration)  # 1s: every cycle
    every_precision: bool = option(False, boolean)  # FLOP series per precision; else bf16 only

    def ledger_options(self) -> LedgerOptions:
        state = self.state_file or (f"{self.ledger}.state" if self.ledger else "")
        return LedgerOptions(
            self.ledger,
            state,
            self.ledger_max_bytes,
            self.ledger_keep,
            self.checkpoint_interval,
            self.ended_after,
            self.retention,
            self.idle_below,
            self.every_precision,
        )

    # GPUs a job holds with no process on them (docs/jobs.md, "Allocation sources"); "" turns off
    kubelet_socket: str = option(KUBELET_SOCKET, string)
    slurm_cgroup_root: str = option("/sys/fs/cgroup", string)
    allocation_refresh: float = option(10.0, parse_duration)
