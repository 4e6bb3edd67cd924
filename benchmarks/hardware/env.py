"""Step 1: the machine as found: nvidia-smi's full reports, kernel, driver and library versions."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.hardware.common import Context, guarded, open_nvml, part, run_command, write_json

SMI_TIMEOUT_S = 20.0
XML_NAME = "nvidia-smi-q.xml"
TEXT_NAME = "nvidia-smi-q.txt"
PACKAGES = ("nvidia-ml-py", "torch", "prometheus-client", "psutil", "PyYAML", "bcrypt")


def run(ctx: Context) -> None:
    found = {
        "nvidia_smi_xml": guarded("xml", lambda: _save(["-q", "-x"], ctx.out / XML_NAME)),
        "nvidia_smi_text": guarded("text", lambda: _save(["-q"], ctx.out / TEXT_NAME)),
        "nvidia_smi_version": guarded("version", _smi_version),
        "uname": platform.uname()._asdict(),
        "python": sys.version,
        "packages": {name: _version(name) for name in PACKAGES},
        "driver_proc": guarded("proc", _proc_driver),
        "nvml": guarded("nvml", _nvml_versions),
    }
    write_json(part(ctx, "env"), found)


def _save(flags: list[str], path: Path) -> dict[str, Any]:
    done = run_command(["nvidia-smi", *flags], SMI_TIMEOUT_S)
    if done["rc"] == 0:
        path.write_text(done["stdout"])
    return {k: v for k, v in done.items() if k != "stdout"} | {"bytes": len(done["stdout"])}


def _smi_version() -> str:
    done = run_command(["nvidia-smi", "--version"], SMI_TIMEOUT_S)
    return str(done["stdout"] or done.get("error") or done.get("stderr"))


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _proc_driver() -> str:
    return Path("/proc/driver/nvidia/version").read_text()


def _nvml_versions() -> dict[str, Any]:
    nv, why = open_nvml()
    if nv is None:
        return {"error": why}
    try:
        handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())]
        return {
            "driver": _str(nv.nvmlSystemGetDriverVersion()),
            "nvml": _str(nv.nvmlSystemGetNVMLVersion()),
            "cuda_driver": nv.nvmlSystemGetCudaDriverVersion_v2(),
            "gpus": [_str(nv.nvmlDeviceGetName(h)) for h in handles],
        }
    finally:
        nv.nvmlShutdown()


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
