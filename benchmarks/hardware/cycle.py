"""Step 3 (e): the agent's read cycle on the real driver, and the latency of each NVML call.

The backend is built as `agent.app` builds it (NvmlGateway over pynvml, BackendOptions from the
default configuration), with every `nvml*` call of the module timed by a thin proxy.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from benchmarks.hardware.common import Context, nvml_module, stats, write_json

CYCLES = 50  # read() calls: the first discovers; per-call latencies come from all of them
REPORTED_CYCLES = 20  # the cycle-time figure: cycles 2..21
CYCLE_NAME = "cycle.json"
UNTIMED = ("EventSetWait",)  # the XID listener's waits last up to 500 ms by design


class TimedNvml:
    """A pynvml-shaped module whose `nvml*` functions record their wall time (µs) per call kind."""

    def __init__(self, nv: Any) -> None:
        self._nv = nv
        self._lock = threading.Lock()
        self.calls: dict[str, list[float]] = defaultdict(list)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._nv, name)
        if not name.startswith("nvml") or not callable(value) or any(u in name for u in UNTIMED):
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                spent = (time.perf_counter() - started) * 1e6
                with self._lock:
                    self.calls[call_kind(name, args, kwargs)].append(spent)

        return timed


def call_kind(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """`nvmlDeviceGetClockInfo(1)`: the function and its plain arguments (handles left out)."""
    shown = []
    for arg in args:
        if isinstance(arg, (list, tuple)):
            shown.append(f"[{len(arg)}]")
        elif isinstance(arg, (int, str)) and not isinstance(arg, bool):
            shown.append(repr(arg))
    shown += [f"{key}={value!r}" for key, value in kwargs.items()]
    return f"{name}({','.join(shown)})"


def backend(nv: Any) -> Any:
    """An NvmlBackend made as agent.app.gpu_collector makes it, over the default Config."""
    from agent.collectors.gpu import GPU_DEADLINE_SHARE
    from agent.config import Config
    from agent.hw.nvml import NvmlGateway
    from agent.hw.nvml_backend import BackendOptions, NvmlBackend

    config = Config()
    gpu, jobs = config.collectors.gpu, config.collectors.jobs
    options = BackendOptions(
        xid_events=gpu.xid_events,
        gpm=gpu.gpm,
        processes=jobs.enabled,
        gpu_deadline_s=GPU_DEADLINE_SHARE * config.interval,
        sysfs=gpu.sysfs,
        expected_gpus=gpu.expected_gpus,
    )
    return NvmlBackend(NvmlGateway(nv), options)


def run(ctx: Context) -> None:
    try:
        timed = TimedNvml(nvml_module())
    except Exception as err:
        write_json(ctx.out / CYCLE_NAME, {"error": f"pynvml not importable: {err!r}"})
        return
    reader = backend(timed)
    try:
        spent, last = _cycles(reader)
        result = {
            "first_cycle_ms": round(spent[0], 2),
            "cycle_ms": stats(spent[1 : 1 + REPORTED_CYCLES], 2),
            "cycle_ms_all_after_first": stats(spent[1:], 2),
            "last_snapshot": describe(last),
            "errors": {f"{f}:{e}": n for (f, e), n in reader.gw.error_counts().items()},
        }
    finally:
        reader.close()
    result["calls_us"] = _call_table(timed)
    write_json(ctx.out / CYCLE_NAME, result)


def _cycles(reader: Any) -> tuple[list[float], Any]:
    spent, last = [], None
    for _ in range(CYCLES):
        started = time.perf_counter()
        last = reader.read()
        spent.append((time.perf_counter() - started) * 1000)
        if not last.status.up:
            break  # NVML unavailable: one cycle says so
    return spent, last


def _call_table(timed: TimedNvml) -> dict[str, Any]:
    with timed._lock:
        calls = {kind: list(times) for kind, times in timed.calls.items()}
    table = {kind: stats(times, 1) for kind, times in calls.items()}
    return dict(sorted(table.items(), key=lambda item: -(item[1]["median"] or 0)))


def describe(snapshot: Any) -> dict[str, Any]:
    """What a snapshot held: NVML status, and per GPU its state, activity and fabric values."""
    if snapshot is None:
        return {}
    gpus = [
        {
            "index": r.device.index,
            "up": r.up,
            "down_reason": r.down_reason,
            "activity": r.activity,
            "fabric": [r.fabric_state, r.fabric_status, r.fabric_clique],
            "processes": None if r.processes is None else len(r.processes),
        }
        for r in snapshot.readings
    ]
    status = snapshot.status
    return {
        "nvml_up": status.up,
        "error": status.error,
        "driver": status.driver_version,
        "gpus": gpus,
    }
