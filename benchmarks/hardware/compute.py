"""Step 4: delivered compute against what GPM says (docs/delivered-compute.md).

A bf16, an fp32 (TF32 off) and an fp64 GEMM loop, about 25 s each, are timed for TFLOP/s
(2·n³ per product) while a child process reads the GPU through the agent's backend once a
second (GPM activity appears from its second read on), with the agent's own delivered FLOP/s
per precision (`agent.collectors.delivered`). A load's row is the median over the samples whose
one-second window lies inside the load, its first second left out.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.collectors.delivered import delivered_flops
from benchmarks.hardware.common import Context, guarded, write_json

N = 8192
IDLE_S = 5.0
SAMPLER_READY_S = 15.0  # the sampler imports the agent and initialises NVML first
LOAD_S = 25.0
SETTLE_S = 2.0  # a sample's window must start this long after its load started
SAMPLER_MAX_S = 150.0
COMPUTE_NAME = "compute.json"
SAMPLES = "samples.jsonl"
STOP = "sampler.stop"
FIELDS = (
    "sm_active",
    "tensor_active",
    "hmma_tensor_active",
    "dfma_tensor_active",
    "imma_tensor_active",
    "pipe_fp32",
    "pipe_fp16",
    "pipe_fp64",
    "sm_occupancy",
)
PRECISIONS = ("bf16", "fp32", "fp64", "int8")  # delivered_<precision>_tflops per sample


def run(ctx: Context) -> None:
    result: dict[str, Any] = {}
    torch = guarded("torch", lambda: importlib.import_module("torch"))
    if isinstance(torch, dict) or not torch.cuda.is_available():
        result["skipped"] = "no torch" if isinstance(torch, dict) else "torch sees no CUDA device"
        result["torch"] = torch if isinstance(torch, dict) else str(torch.__version__)
        write_json(ctx.out / COMPUTE_NAME, result)
        return
    sampler = _start_sampler(ctx)
    try:
        result["sampler_ready_s"] = _wait_ready(ctx.scratch / SAMPLES)
        result.update(torch=str(torch.__version__), device=torch.cuda.get_device_name(0))
        result["phases"] = []
        for phase in _phases(torch):
            result["phases"].append(guarded("phase", phase))
            _save(ctx, result)  # what is done so far survives a timeout of the step
    finally:
        (ctx.scratch / STOP).touch()
        _stop(sampler)
    _save(ctx, result)


def _save(ctx: Context, result: dict[str, Any]) -> None:
    samples = _samples(ctx.scratch / SAMPLES)
    result["rows"] = rows(result.get("phases", []), samples)
    write_json(ctx.out / COMPUTE_NAME, {**result, "samples": samples})


def _phases(torch: Any) -> list[Callable[[], dict[str, Any]]]:
    def fp32() -> dict[str, Any]:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return _gemm(torch, "fp32 (TF32 off)", torch.float32, 2)

    return [
        _idle,
        lambda: _gemm(torch, "bf16", torch.bfloat16, 20),
        fp32,
        lambda: _gemm(torch, "fp64", torch.float64, 2),
    ]


def _idle() -> dict[str, Any]:
    started = time.time()
    time.sleep(IDLE_S)
    return {"load": "idle", "start": started, "end": time.time(), "measured_tflops": 0.0}


def _gemm(torch: Any, load: str, dtype: Any, batch: int) -> dict[str, Any]:
    """Products of two n-by-n matrices in `dtype`, for LOAD_S seconds, synchronised per batch."""
    a = torch.randn(N, N, device="cuda", dtype=dtype)
    b = torch.randn(N, N, device="cuda", dtype=dtype)
    c = torch.empty(N, N, device="cuda", dtype=dtype)
    for _ in range(3):  # cuBLAS set-up out of the timing
        torch.matmul(a, b, out=c)
    torch.cuda.synchronize()
    started, wall, count = time.perf_counter(), time.time(), 0
    while time.perf_counter() - started < LOAD_S:
        for _ in range(batch):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        count += batch
    elapsed = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30
    del a, b, c
    torch.cuda.empty_cache()
    tflops = 2 * N**3 * count / elapsed / 1e12
    return {
        "load": load,
        "start": wall,
        "end": wall + elapsed,
        "products": count,
        "seconds": round(elapsed, 3),
        "measured_tflops": round(tflops, 1),
        "peak_memory_gib": round(peak, 2),
    }


def _start_sampler(ctx: Context) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "benchmarks.hardware.validate", "child", "sampler"]
    args += ["--scratch", str(ctx.scratch)]
    log = open(ctx.scratch / "sampler.log", "wb")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def _wait_ready(path: Path) -> float | None:
    """Seconds until the sampler wrote its first line; None when it did not in time."""
    started = time.monotonic()
    while time.monotonic() - started < SAMPLER_READY_S:
        if path.exists() and path.stat().st_size > 0:
            return round(time.monotonic() - started, 2)
        time.sleep(0.1)
    return None


def _stop(sampler: subprocess.Popen[bytes]) -> None:
    try:
        sampler.wait(timeout=5)
    except subprocess.TimeoutExpired:
        sampler.kill()
        sampler.wait(timeout=5)


def _samples(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def rows(phases: list[Any], samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per load: its measured TFLOP/s and the median of GPU 0's samples inside it."""
    found = []
    for phase in phases:
        if not isinstance(phase, dict) or "start" not in phase:
            continue
        inside = [
            s
            for s in samples
            if s.get("gpu") == 0
            and s.get("window_start") is not None
            and phase["start"] + SETTLE_S <= s["window_start"]
            and s["t"] <= phase["end"]
        ]
        row = {"load": phase["load"], "measured_tflops": phase["measured_tflops"]}
        delivered = tuple(f"delivered_{p}_tflops" for p in PRECISIONS)
        for name in (*FIELDS, *delivered, "sm_clock_mhz", "power_w", "utilization"):
            values = [s[name] for s in inside if s.get(name) is not None]
            row[name] = round(statistics.median(values), 3) if values else None
        row["samples"] = len(inside)
        found.append(row)
    return found


def child_sampler(scratch: Path) -> int:
    """In a child: one backend read a second, a JSON line per GPU, until told to stop."""
    from benchmarks.hardware.common import nvml_module
    from benchmarks.hardware.cycle import backend

    reader, parent = backend(nvml_module()), os.getppid()
    out, stop = scratch / SAMPLES, scratch / STOP
    started, previous = time.monotonic(), None
    try:
        with out.open("a") as sink:
            while not stop.exists() and os.getppid() == parent:
                if time.monotonic() - started > SAMPLER_MAX_S:
                    break
                now = time.time()
                for line in _sample_lines(reader.read(), now, previous):
                    sink.write(json.dumps(line) + "\n")
                sink.flush()
                previous = now
                time.sleep(max(0.0, 1.0 - (time.time() - now)))
    finally:
        reader.close()
    return 0


def _sample_lines(snapshot: Any, now: float, previous: float | None) -> list[dict[str, Any]]:
    lines = []
    for r in snapshot.readings:
        line: dict[str, Any] = {"t": now, "window_start": previous, "gpu": r.device.index}
        line.update({name: r.activity.get(name) for name in FIELDS})
        per_second = delivered_flops(r, 1.0)
        for precision in PRECISIONS:
            flops = per_second.get(precision)
            line[f"delivered_{precision}_tflops"] = None if flops is None else flops / 1e12
        sm = r.clocks_hertz.get("sm")
        line["sm_clock_mhz"] = None if sm is None else sm / 1e6
        line["power_w"], line["utilization"] = r.power_watts, r.utilization_ratio
        line["memory_used_gib"] = (
            None if r.memory_used_bytes is None else r.memory_used_bytes / 2**30
        )
        lines.append(line)
    return lines
