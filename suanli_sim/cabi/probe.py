"""The agent's NVML probe child on a simulated node: a forked copy of this process.

`fork_runner(nvml)` makes the probe's calls in a child forked from the simulated node's
process, so they reach the same fake (its scenario, clock and faults) through the same C
library; a `segfault` fault kills that child (SIGABRT) and the agent sees a crash, as it would
on a real driver. The fake's lock and pynvml's are held across the fork, so the child never
inherits one taken by another thread.
"""

from __future__ import annotations

import faulthandler
import io
import os
import select
import signal
import time
from typing import Any

from agent.hw.nvml_probe import CHILD_TIMEOUT_S, run_child
from suanli_sim.binding import pynvml
from suanli_sim.fake_calls import ProcessKilled

__all__ = ["fork_runner", "inline_runner"]


def fork_runner(nvml: Any) -> Any:
    def run(functions: list[str]) -> tuple[str, int]:
        read_end, write_end = os.pipe()
        with nvml.fake.lock, pynvml.libLoadLock:
            pid = os.fork()
        if pid == 0:  # the child
            faulthandler.disable()  # its death is the answer, not a report for the parent
            os.close(read_end)
            try:
                with os.fdopen(write_end, "w") as out:
                    run_child(nvml, functions, out)
            finally:
                os._exit(0)
        os.close(write_end)
        return _collect(pid, read_end)

    return run


def _collect(pid: int, read_end: int) -> tuple[str, int]:
    chunks, deadline = [], time.monotonic() + CHILD_TIMEOUT_S
    with os.fdopen(read_end, "rb") as pipe:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([pipe], [], [], 0.1)
            if ready:
                chunk = os.read(pipe.fileno(), 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        else:
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return b"".join(chunks).decode(errors="replace"), code


def inline_runner(fake: Any) -> Any:
    """The fleet simulator's probe, in place (a fork of a process holding a thousand nodes is
    not cheap): a call a `segfault` fault covers ends it as a child's death would."""

    def run(functions: list[str]) -> tuple[str, int]:
        out = io.StringIO()
        try:
            run_child(fake, functions, out)
        except ProcessKilled:  # where a child would have died (SIGABRT)
            return out.getvalue(), -signal.SIGABRT
        return out.getvalue(), 0

    return run
