"""Risky NVML calls first made in a short-lived child process, once per driver version.

A call NVML was never seen to answer on real hardware (`nvml_functions.csv`, validated = no)
can kill the process that makes it: a real H200's Python process died of a segmentation fault
on one. Before the sampler makes such a call, `NvmlProbe` runs a child that makes every such
call on every GPU, announcing each on its output before and after. A function whose call the
child survived is used; one it died in is disabled (`suanli_nvml_function_disabled`) and the
rest are probed again in a new child. Outcomes are kept per driver version, in memory and in
`collectors.gpu.probe_state` when set, so a restart with the same driver probes nothing.

`python -m agent.hw.nvml_probe FUNCTION...` is the child on a real node.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from agent.hw.nvml import NVMLError, NvmlGateway
from agent.hw.nvml_functions import unvalidated

__all__ = ["ANSWERED", "NvmlProbe", "ProbeRunner", "run_child", "subprocess_runner"]

log = logging.getLogger(__name__)
ANSWERED = "answered"
CHILD_TIMEOUT_S = 20.0
# A runner makes the calls in a child: (its output, its exit status; negative: killed by signal).
ProbeRunner = Callable[[list[str]], tuple[str, int]]


def _mig_handle(nv: Any, handle: Any) -> Any:
    try:
        return nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, 0)
    except NVMLError:
        return handle


def _gpm_mig(nv: Any, handle: Any) -> None:
    sample = nv.nvmlGpmSampleAlloc()
    try:
        nv.nvmlGpmMigSampleGet(
            handle, nv.nvmlDeviceGetGpuInstanceId(_mig_handle(nv, handle)), sample
        )
    finally:
        nv.nvmlGpmSampleFree(sample)


# How the child calls each function, as the agent does.
RECIPES: dict[str, Callable[[Any, Any], Any]] = {
    "nvmlDeviceGetBAR1MemoryInfo": lambda nv, h: nv.nvmlDeviceGetBAR1MemoryInfo(h),
    "nvmlDeviceGetMaxMigDeviceCount": lambda nv, h: nv.nvmlDeviceGetMaxMigDeviceCount(h),
    "nvmlDeviceGetMigDeviceHandleByIndex": lambda nv, h: _mig_handle(nv, h),
    "nvmlDeviceGetGpuInstanceId": lambda nv, h: nv.nvmlDeviceGetGpuInstanceId(_mig_handle(nv, h)),
    "nvmlDeviceGetComputeInstanceId": lambda nv, h: nv.nvmlDeviceGetComputeInstanceId(
        _mig_handle(nv, h)
    ),
    "nvmlDeviceGetAttributes": lambda nv, h: nv.nvmlDeviceGetAttributes(_mig_handle(nv, h)),
    "nvmlGpmMigSampleGet": _gpm_mig,
    "nvmlDeviceGetComputeRunningProcesses_v2": lambda nv, h: (
        nv.nvmlDeviceGetComputeRunningProcesses_v2(h)
    ),
    "nvmlDeviceGetCurrentClocksThrottleReasons": lambda nv, h: (
        nv.nvmlDeviceGetCurrentClocksThrottleReasons(h)
    ),
    "nvmlDeviceGetPciInfo": lambda nv, h: nv.nvmlDeviceGetPciInfo(h),
    "nvmlSystemGetCudaDriverVersion": lambda nv, h: nv.nvmlSystemGetCudaDriverVersion(),
}


def run_child(nv: Any, functions: list[str], out: IO[str]) -> None:
    """The child's work: each function on every GPU, announced before and after."""
    nv.nvmlInit()
    handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())]
    for function in functions:
        out.write(f"calling {function}\n")
        out.flush()
        for handle in handles:
            # an answer (an error is one): the process survived the call
            with contextlib.suppress(NVMLError, ctypes.ArgumentError, AttributeError):
                RECIPES[function](nv, handle)
        out.write(f"{ANSWERED} {function}\n")
        out.flush()
    nv.nvmlShutdown()


def subprocess_runner(functions: list[str]) -> tuple[str, int]:
    """The child on a real node: a new interpreter running this module."""
    command = [sys.executable, "-m", "agent.hw.nvml_probe", *functions]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        return out, -9
    return done.stdout, done.returncode


def outcomes(output: str, status: int, functions: list[str]) -> dict[str, str]:
    """What one child says: answered, or how it ended in the call it announced last."""
    found: dict[str, str] = {}
    calling = None
    for line in output.splitlines():
        word, _, function = line.partition(" ")
        if word == "calling":
            calling = function
        elif word == ANSWERED and function in functions:
            found[function] = ANSWERED
            calling = None
    if calling is not None:
        found[calling] = "crashed" if status < 0 else f"exit status {status}"
    return found


class NvmlProbe:
    """Says whether the sampler may call a function; probes unvalidated ones once per driver."""

    def __init__(
        self,
        driver: Callable[[], str],
        runner: ProbeRunner = subprocess_runner,
        state_path: str = "",
        risky: frozenset[str] | None = None,
    ) -> None:
        self._driver = driver
        self._runner = runner
        self._state = Path(state_path) if state_path else None
        self._risky = unvalidated() if risky is None else risky
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, str]] = self._load()
        self._current: dict[str, str] | None = None

    def allowed(self, function: str) -> bool:
        if function not in self._risky:
            return True
        with self._lock:
            if self._current is None:
                self._current = self._probe()
            return self._current.get(function) == ANSWERED

    def forget(self) -> None:
        """NVML re-initialised: the driver may have changed."""
        with self._lock:
            self._current = None

    def disabled(self) -> dict[str, str]:
        """{function: why} for every function the probe turned off."""
        with self._lock:
            current = self._current or {}
            return {f: why for f, why in sorted(current.items()) if why != ANSWERED}

    def _probe(self) -> dict[str, str]:
        driver = self._driver()
        known = dict(self._known.get(driver, {}))
        pending = sorted(f for f in self._risky if f not in known)
        while pending:
            output, status = self._runner(pending)
            found = outcomes(output, status, pending)
            if not found:  # the child died before its first call: nothing can be said
                found = {f: f"probe failed (exit status {status})" for f in pending}
            for function, outcome in found.items():
                if outcome != ANSWERED:
                    log.error(
                        "NVML %s disabled: its probe %s (driver %s)", function, outcome, driver
                    )
            known.update(found)
            pending = [f for f in pending if f not in known]
        self._known[driver] = known
        self._save()
        return known

    def _load(self) -> dict[str, dict[str, str]]:
        if self._state is None or not self._state.exists():
            return {}
        try:
            loaded = json.loads(self._state.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            log.warning("NVML probe state %s unreadable, probing again: %s", self._state, err)
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _save(self) -> None:
        if self._state is None:
            return
        try:
            self._state.parent.mkdir(parents=True, exist_ok=True)
            self._state.write_text(json.dumps(self._known, indent=1, sort_keys=True))
        except OSError as err:
            log.warning("NVML probe state %s not written: %s", self._state, err)


def main(argv: list[str]) -> None:
    """The child: exit status 0 once every call answered; death or a traceback otherwise."""
    run_child(NvmlGateway().nv, [f for f in argv if f in RECIPES], sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
