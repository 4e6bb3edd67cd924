"""The human-readable summary: what matched, what did not, and the numbers."""

from __future__ import annotations

import json
from typing import Any

TOP_CALLS = 25


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=repr)[:160]
    return "—" if value is None else str(value)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c).replace("|", "/") for c in row) + " |" for row in rows]
    return [*lines, ""]


def render(
    steps: list[dict[str, Any]],
    probes: dict[str, Any],
    loaded: dict[str, Any],
    logs: dict[str, str],
    fake: str | None,
) -> str:
    lines = _head(probes, fake)
    lines += [
        "## Steps",
        "",
        *table(
            ["step", "exit", "seconds", "limit s"],
            [[s["step"], _exit(s["rc"]), s["seconds"], s["limit_s"]] for s in steps],
        ),
    ]
    lines += _compare(loaded.get("compare.json"))
    lines += _probes(probes)
    lines += _cycle(loaded.get("cycle.json"))
    lines += _compute(loaded.get("compute.json"))
    for step, tail in logs.items():
        lines += [f"## Log of the failed step `{step}` (end)", "", "```", tail, "```", ""]
    return "\n".join(lines)


def _exit(rc: str) -> str:
    known = {"0": "0 ok", "124": "124 TIMED OUT", "137": "137 KILLED after its time"}
    if rc in known:
        return known[rc]
    if rc.isdigit() and int(rc) > 128:
        return f"{rc} CRASHED (signal {int(rc) - 128})"
    return f"{rc} FAILED"


def _head(probes: dict[str, Any], fake: str | None) -> list[str]:
    env = probes.get("environment") or {}
    nvml = env.get("nvml") or {}
    lines = ["# Suanli agent on real hardware: validation run", ""]
    if fake:
        lines += [f"**DRY RUN on the simulator ({fake}); nothing here was measured on a GPU.**", ""]
    uname = env.get("uname") or {}
    lines += [
        f"- GPUs (NVML): {fmt(nvml.get('gpus') or nvml.get('error'))}",
        f"- driver {fmt(nvml.get('driver'))}, NVML {fmt(nvml.get('nvml'))}, "
        f"CUDA driver {fmt(nvml.get('cuda_driver'))}",
        f"- packages: {fmt(env.get('packages'))}",
        f"- kernel: {fmt(uname.get('release'))} ({fmt(uname.get('machine'))}), "
        f"python {fmt((env.get('python') or '').split(' ')[0])}",
        "",
    ]
    return lines


def _compare(found: Any) -> list[str]:
    lines = ["## Agent vs nvidia-smi", ""]
    if not isinstance(found, dict):
        return [*lines, "No result (see the step's log below).", ""]
    run = found.get("agent_run") or {}
    check = found.get("import_check") or {}
    lines += [
        f"- `python -m agent --once`: exit {fmt(run.get('rc'))} {fmt(run.get('exit_meaning'))}, "
        f"{fmt(run.get('seconds'))} s, {fmt(found.get('series'))} series; "
        f"import check: {_last_line(check)}",
    ]
    if run.get("stderr"):
        lines += ["", "```", str(run["stderr"])[-800:], "```"]
    rows = _rows(found)
    verdicts = [r.get("ok") for r in rows]
    lines += [
        f"- {verdicts.count(True)} matched, {verdicts.count(False)} did not, "
        f"{verdicts.count(None)} not comparable (tag missing in nvidia-smi's XML, or no data)",
        "",
    ]
    bad = [r for r in rows if r.get("ok") is False]
    if bad:
        lines += ["### Did not match", "", *_row_table(bad)]
    lines += ["### All rows", "", *_row_table(rows)]
    return lines


def _last_line(done: dict[str, Any]) -> str:
    text = done.get("stdout") or done.get("error") or done.get("stderr") or ""
    lines = str(text).strip().splitlines()
    return lines[-1] if lines else "—"


def _rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key in ("rows", "energy"):
        value = found.get(key)
        if isinstance(value, list):
            rows += value
        elif isinstance(value, dict):
            rows.append({"metric": key, "ok": False, "note": value.get("error")})
    return rows


def _row_table(rows: list[dict[str, Any]]) -> list[str]:
    body = []
    for r in rows:
        smi = r.get("nvidia-smi", r.get("nvml-before"))
        after = r.get("nvidia-smi-after", r.get("nvml-after"))
        shown = fmt(smi) if after is None or after == smi else f"{fmt(smi)} → {fmt(after)}"
        ok = {True: "ok", False: "**NO**", None: "n/a"}[r.get("ok")]
        gpu = str(r.get("gpu") or "")[:12]
        body.append([gpu, r.get("metric"), r.get("agent"), shown, ok, r.get("note") or ""])
    header = ["gpu", "metric", "agent", "nvidia-smi (before → after)", "ok", "note"]
    return table(header, body)


def _probes(probes: dict[str, Any]) -> list[str]:
    lines = ["## Fault and fabric paths", ""]
    for key, title in (
        ("fabric_children", "Fabric info in child processes (rc < 0: killed by a signal)"),
        ("fabric_in_process", "Fabric info in-process (raw call, and the agent's read_fabric)"),
        ("events", "XID event registration (raw) and handle identity"),
        ("xid_listener", "The agent's XidListener"),
        ("pci", "PCI scan vs NVML bus ids"),
        ("kmsg", "/dev/kmsg through KmsgFollower"),
    ):
        shown = probes.get(key, f"not run (NVML: {probes.get('nvml', 'step failed')})")
        lines += [f"**{title}**", "", "```", _short(shown), "```", ""]
    return lines


def _short(value: Any, width: int = 400) -> str:
    """One line per key, each cut to `width` characters (probes.json has it all)."""
    if not isinstance(value, dict):
        return json.dumps(value, default=repr)[:width]
    lines = []
    for key, item in value.items():
        text = json.dumps(item, default=repr)
        lines.append(f"{key}: {text if len(text) <= width else text[:width] + ' …'}")
    return "\n".join(lines)


def _cycle(found: Any) -> list[str]:
    lines = ["## Read cycle (NvmlBackend.read on the real driver)", ""]
    if not isinstance(found, dict) or "error" in found:
        why = found.get("error") if isinstance(found, dict) else "see the step's log below"
        return [*lines, f"No result ({why}).", ""]
    cycle = found.get("cycle_ms") or {}
    lines += [
        f"- first cycle (discovery, static facts, XID registration): "
        f"{fmt(found.get('first_cycle_ms'))} ms",
        f"- next {fmt(cycle.get('n'))} cycles: median {fmt(cycle.get('median'))} ms, "
        f"p90 {fmt(cycle.get('p90'))} ms, max {fmt(cycle.get('max'))} ms",
        f"- NVML errors counted: {fmt(found.get('errors'))}",
        "",
    ]
    calls = list((found.get("calls_us") or {}).items())[:TOP_CALLS]
    body = [[kind, s.get("n"), s.get("median"), s.get("p90"), s.get("max")] for kind, s in calls]
    lines += [f"Slowest {TOP_CALLS} call kinds (µs):", ""]
    return lines + table(["call", "n", "median", "p90", "max"], body)


def _compute(found: Any) -> list[str]:
    lines = ["## Delivered compute vs GPM (GPU 0)", ""]
    if not isinstance(found, dict):
        return [*lines, "No result (see the step's log below).", ""]
    if found.get("skipped"):
        torch = found.get("torch")
        why = torch.get("error") if isinstance(torch, dict) else torch
        return [*lines, f"Skipped: {found['skipped']} ({fmt(why)}).", ""]
    columns = ["load", "measured_tflops", "sm_active", "tensor_active", "hmma_tensor_active"]
    columns += ["dfma_tensor_active", "pipe_fp32", "pipe_fp64", "sm_clock_mhz", "power_w"]
    columns += [f"delivered_{p}_tflops" for p in ("bf16", "fp32", "fp64")] + ["samples"]
    body = [[row.get(c) for c in columns] for row in found.get("rows") or []]
    lines += [f"torch {fmt(found.get('torch'))} on {fmt(found.get('device'))}", ""]
    return lines + table(columns, body)
