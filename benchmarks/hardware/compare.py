"""Step 2: the agent's `--once` against the real GPU, and its values against nvidia-smi's.

nvidia-smi's XML is taken just before and just after the agent's sample; a moving value is
accepted within the range of the two reports widened by the tolerance of `rules`. The energy
counter is not in nvidia-smi's report: it is bracketed by direct NVML reads instead.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from benchmarks.hardware import exposition as ex
from benchmarks.hardware import smi_xml as x
from benchmarks.hardware.common import Context, guarded, open_nvml, run_command, write_json
from benchmarks.hardware.rules import INFO_LABELS, Rule, rules
from benchmarks.hardware.rules import __doc__ as rules_doc

AGENT_TIMEOUT_S = 30.0
SMI_TIMEOUT_S = 20.0
SMI_XML_ENV = "VALIDATE_SMI_XML"  # a saved report instead of nvidia-smi: local dry runs only
AGENT_ARGS_ENV = "VALIDATE_AGENT_ARGS"  # extra agent flags (`--fake h200-8`): local dry runs only
PROM_NAME = "agent-once.prom"
COMPARE_NAME = "compare.json"
IMPORT_CHECK = (
    "import json, sys; import agent.cli, agent.app, agent.hw.nvml; "
    "print(json.dumps({'bcrypt_imported': 'bcrypt' in sys.modules, "
    "'pynvml': getattr(sys.modules.get('pynvml'), '__file__', None)}))"
)


def run(ctx: Context) -> None:
    result: dict[str, Any] = {"import_check": guarded("import", _import_check)}
    before = _smi_xml()
    energy_before = guarded("energy", _energy)
    result["agent_run"] = agent = _run_agent(ctx)
    energy_after = guarded("energy", _energy)
    after = _smi_xml()
    series = ex.parse(agent.get("stdout", ""))
    result["series"] = len(series)
    result["tolerances"] = (rules_doc or "").strip()
    result["rows"] = guarded("compare", lambda: _compare(series, before, after))
    result["energy"] = guarded("energy", lambda: _energy_rows(series, energy_before, energy_after))
    del agent["stdout"]
    write_json(ctx.out / COMPARE_NAME, result)


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}:{path}"}


def _import_check() -> dict[str, Any]:
    return run_command([sys.executable, "-c", IMPORT_CHECK], 30.0, env=_env())


def _agent_config(ctx: Context) -> Path:
    """detail on (more values to compare); the kernel-log cursor kept out of /var/lib."""
    path = ctx.scratch / "agent.yaml"
    cursor = ctx.scratch / "kmsg-cursor.json"
    path.write_text(f'collectors:\n  gpu:\n    detail: true\n  kmsg:\n    state_file: "{cursor}"\n')
    return path


def _run_agent(ctx: Context) -> dict[str, Any]:
    extra = os.environ.get(AGENT_ARGS_ENV, "").split()
    args = [sys.executable, "-m", "agent", "--once", "--config", str(_agent_config(ctx)), *extra]
    done = run_command(args, AGENT_TIMEOUT_S, env=_env())
    (ctx.out / PROM_NAME).write_text(done.get("stdout", ""))
    done["exit_meaning"] = {0: "ok", 3: "a collector failed (see stderr)"}.get(done["rc"], "")
    return done


def _smi_xml() -> ET.Element | None:
    saved = os.environ.get(SMI_XML_ENV)
    if saved:
        return x.parse(Path(saved).read_text())
    done = run_command(["nvidia-smi", "-q", "-x"], SMI_TIMEOUT_S)
    return x.parse(done["stdout"]) if done["rc"] == 0 else None


def _energy() -> dict[str, float]:
    """Each GPU's energy counter (J) by UUID, straight from NVML."""
    nv, why = open_nvml()
    if nv is None:
        raise RuntimeError(why)
    try:
        found = {}
        for index in range(nv.nvmlDeviceGetCount()):
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            uuid = nv.nvmlDeviceGetUUID(handle)
            uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
            found[uuid] = nv.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0
        return found
    finally:
        nv.nvmlShutdown()


def _compare(series: list[ex.Series], before: Any, after: Any) -> list[dict[str, Any]]:
    early, late = x.gpus(before), x.gpus(after)
    if not early:
        return [{"metric": "*", "ok": None, "note": "no nvidia-smi XML report to compare with"}]
    found = _system_rows(series, before)
    for uuid, gpu in early.items():
        found += _info_rows(series, uuid, gpu, before)
        found += [_row(series, rule, uuid, gpu, late.get(uuid)) for rule in rules()]
        found.append(_fabric_row(series, uuid, gpu))
    return found


def judge(agent: float | None, smi: list[x.Value], tol_abs: float, tol_rel: float) -> bool | None:
    """Within the reports' range widened by the tolerance; None when nvidia-smi lacks the tag."""
    if x.MISSING in smi:
        return None
    known = [float(v) for v in smi if v is not None]
    if not known or agent is None:
        return not known and agent is None  # both absent agree; one absent does not
    low, high = min(known), max(known)
    tolerance = max(tol_abs, tol_rel * max(abs(low), abs(high)))
    return low - tolerance <= agent <= high + tolerance


def _row(
    series: list[ex.Series], rule: Rule, uuid: str, gpu: ET.Element, late: ET.Element | None
) -> dict[str, Any]:
    found = ex.find(series, rule.metric, uuid=uuid, **rule.labels)
    agent = None if found is None else found.value
    smi = [rule.read(gpu)] + ([] if late is None else [rule.read(late)])
    return {
        "gpu": uuid,
        "metric": rule.title(),
        "agent": agent,
        "nvidia-smi": smi[0],
        "nvidia-smi-after": smi[-1] if late is not None else None,
        "tolerance": {"abs": rule.tol_abs, "rel": rule.tol_rel},
        "ok": judge(agent, smi, rule.tol_abs, rule.tol_rel),
        "note": rule.note,
    }


def _text(root: ET.Element, gpu: ET.Element, path: str) -> str | None:
    text = root.findtext(path[1:]) if path.startswith("/") else gpu.findtext(path)
    return None if text is None else text.strip()


def _info_rows(
    series: list[ex.Series], uuid: str, gpu: ET.Element, root: ET.Element
) -> list[dict[str, Any]]:
    info = ex.find(series, "suanli_gpu_info", uuid=uuid)
    rows = []
    for label, path in {**INFO_LABELS, "pci_bus_id": ""}.items():
        smi = gpu.get("id") if label == "pci_bus_id" else _text(root, gpu, path)
        agent = None if info is None else info.labels.get(label)
        same = None if smi is None else (agent or "").lower() == smi.lower()
        metric = f"suanli_gpu_info{{{label}}}"
        rows.append({"gpu": uuid, "metric": metric, "agent": agent, "nvidia-smi": smi, "ok": same})
    return rows


def _system_rows(series: list[ex.Series], root: ET.Element) -> list[dict[str, Any]]:
    attached = float(root.findtext("attached_gpus") or "nan")
    rows = []
    for state in ("expected", "present"):
        found = ex.find(series, "suanli_gpus", state=state)
        agent = None if found is None else found.value
        rows.append(
            {
                "metric": f'suanli_gpus{{state="{state}"}}',
                "agent": agent,
                "nvidia-smi": attached,
                "ok": agent == attached,
            }
        )
    up = ex.find(series, "suanli_nvml_up")
    rows.append(
        {
            "metric": "suanli_nvml_up",
            "agent": None if up is None else up.value,
            "nvidia-smi": attached,
            "ok": up is not None and (up.value == 1) == (attached > 0),
        }
    )
    return rows


def _fabric_row(series: list[ex.Series], uuid: str, gpu: ET.Element) -> dict[str, Any]:
    """No series where nvidia-smi says N/A (no NVSwitch); else the same state, status, clique."""
    found = ex.find(series, "suanli_gpu_fabric_info", uuid=uuid)
    state = (gpu.findtext("fabric/state") or "").strip()
    smi = {k: (gpu.findtext(f"fabric/{k}") or "").strip() for k in ("state", "status", "cliqueId")}
    agent = (
        None
        if found is None
        else {k: found.labels.get(k) for k in ("state", "status", "clique_id")}
    )
    if state.lower() in ("n/a", "not supported", ""):
        ok = agent is None
    else:
        ok = agent is not None and _same_fabric(agent, smi)
    return {
        "gpu": uuid,
        "metric": "suanli_gpu_fabric_info",
        "agent": agent,
        "nvidia-smi": smi,
        "ok": ok,
    }


def _same_fabric(agent: dict[str, str | None], smi: dict[str, str]) -> bool:
    def norm(text: str | None) -> str:
        return (text or "").lower().replace(" ", "_")

    return (
        norm(agent["state"]) == norm(smi["state"])
        and norm(agent["status"]) == norm(smi["status"])
        and (agent["clique_id"] or "") == smi["cliqueId"]
    )


def _energy_rows(series: list[ex.Series], before: Any, after: Any) -> list[dict[str, Any]]:
    """The agent's energy counter between direct NVML reads taken before and after it."""
    if not isinstance(before, dict) or not isinstance(after, dict) or "error" in before:
        why = before.get("error") if isinstance(before, dict) else before
        return [{"metric": "suanli_gpu_energy_joules_total", "ok": None, "note": str(why)}]
    rows = []
    for uuid, low in before.items():
        found = ex.find(series, "suanli_gpu_energy_joules_total", uuid=uuid)
        agent, high = (None if found is None else found.value), after.get(uuid)
        ok = agent is not None and high is not None and low - 1.0 <= agent <= high + 1.0
        rows.append(
            {
                "gpu": uuid,
                "metric": "suanli_gpu_energy_joules_total",
                "agent": agent,
                "nvml-before": low,
                "nvml-after": high,
                "ok": ok,
                "note": "±1 J beyond the bracket",
            }
        )
    return rows
