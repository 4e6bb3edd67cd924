"""Scenarios for the fake NVML: GPUs, workloads and injected faults, loaded from strict YAML.

A scenario file (built-in ones live in `agent/hw/scenarios/<name>.yaml`)::

    name: h100-8
    description: 8x H100 SXM5 training
    seed: 1
    driver_version: "565.57.01"
    cuda_driver_version: 12070          # nvmlSystemGetCudaDriverVersion (12.7)
    nvml_version: "12.565.57.01"        # optional; default "<cuda major>.<driver_version>"
    gpus:                               # a list (or one mapping); `count` repeats an entry
      - {model: H100-SXM5-80GB, count: 8, workload: training}
    faults:
      - {kind: gpu_lost, gpu: 3, at: 60, until: 120}

Every problem raises `ScenarioError` with a one-line message naming its YAML path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from agent.hw.fake_models import MODELS, model_names
from agent.hw.nvml import pynvml

WORKLOADS = ("idle", "training", "inference", "memory-bound")

# Every pynvml function the fake implements (the parity test checks FakeNvml against this).
FUNCTIONS = frozenset("""
nvmlInit nvmlShutdown nvmlSystemGetDriverVersion nvmlSystemGetNVMLVersion
nvmlSystemGetCudaDriverVersion nvmlSystemGetCudaDriverVersion_v2 nvmlDeviceGetCount
nvmlDeviceGetHandleByIndex nvmlDeviceGetName nvmlDeviceGetUUID nvmlDeviceGetSerial
nvmlDeviceGetPciInfo nvmlDeviceGetPciInfo_v3 nvmlDeviceGetVbiosVersion nvmlDeviceGetArchitecture
nvmlDeviceGetCudaComputeCapability nvmlDeviceGetComputeMode nvmlDeviceGetMigMode
nvmlDeviceGetMaxClockInfo nvmlDeviceGetClockInfo nvmlDeviceGetMaxPcieLinkGeneration
nvmlDeviceGetMaxPcieLinkWidth nvmlDeviceGetCurrPcieLinkGeneration nvmlDeviceGetCurrPcieLinkWidth
nvmlDeviceGetTemperature nvmlDeviceGetTemperatureThreshold
nvmlDeviceGetPowerManagementDefaultLimit nvmlDeviceGetPowerManagementLimitConstraints
nvmlDeviceGetEnforcedPowerLimit nvmlDeviceGetPowerUsage nvmlDeviceGetTotalEnergyConsumption
nvmlDeviceGetUtilizationRates nvmlDeviceGetMemoryInfo nvmlDeviceGetFanSpeed
nvmlDeviceGetPerformanceState nvmlDeviceGetCurrentClocksEventReasons
nvmlDeviceGetCurrentClocksThrottleReasons nvmlDeviceGetViolationStatus
nvmlDeviceGetPcieThroughput nvmlDeviceGetRetiredPages nvmlDeviceGetRetiredPagesPendingStatus
nvmlDeviceGetRemappedRows nvmlDeviceGetEncoderUtilization nvmlDeviceGetDecoderUtilization
nvmlDeviceGetTotalEccErrors nvmlDeviceGetNvLinkState nvmlDeviceGetFieldValues
nvmlDeviceGetComputeRunningProcesses
""".split())

# Library symbols that pynvml functions call under another name (for `missing_functions`).
SYMBOLS = {
    "nvmlDeviceGetCount": "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetHandleByIndex": "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetPciInfo": "nvmlDeviceGetPciInfo_v3",
    "nvmlDeviceGetComputeRunningProcesses": "nvmlDeviceGetComputeRunningProcesses_v3",
}
MEMORY_V2_SYMBOL = "nvmlDeviceGetMemoryInfo_v2"
KNOWN_SYMBOLS = FUNCTIONS | set(SYMBOLS.values()) | {MEMORY_V2_SYMBOL}

RECOVERY_ACTIONS = {
    "none": pynvml.NVML_GPU_RECOVERY_ACTION_NONE,
    "gpu_reset": pynvml.NVML_GPU_RECOVERY_ACTION_GPU_RESET,
    "node_reboot": pynvml.NVML_GPU_RECOVERY_ACTION_NODE_REBOOT,
    "drain_p2p": pynvml.NVML_GPU_RECOVERY_ACTION_DRAIN_P2P,
    "drain_and_reset": pynvml.NVML_GPU_RECOVERY_ACTION_DRAIN_AND_RESET,
}

_COMMON = {"kind", "at", "until", "duration", "gpu", "gpus"}
FAULT_KEYS: dict[str, set[str]] = {
    "gpu_lost": _COMMON,
    "error_storm": _COMMON | {"functions", "error"},
    "slow_call": _COMMON | {"functions", "seconds"},
    "nvml_absent": {"kind", "until"},
    "driver_not_loaded": {"kind", "until"},
    "not_supported": _COMMON | {"functions"},
    "missing_functions": {"kind", "functions"},
    "xid": {"kind", "at", "gpu", "gpus", "code"},
    "ecc": {"kind", "at", "gpu", "gpus", "corrected", "uncorrected"},
    "row_remap_pending": _COMMON,
    "row_remap_failure": {"kind", "at", "gpu", "gpus"},
    "pcie_degraded": _COMMON | {"generation", "width"},
    "thermal": _COMMON | {"temperature", "hw"},
    "nvlink_down": _COMMON | {"links"},
    "recovery_action": _COMMON | {"action"},
}
_REQUIRED = {"slow_call": {"functions", "seconds"}, "not_supported": {"functions"},
             "missing_functions": {"functions"}, "xid": {"code"}}
_GPU_KEYS = {"model", "count", "workload", "mig", "ecc", "power_limit_w", "processes"}
_TOP_KEYS = {"name", "description", "seed", "driver_version", "cuda_driver_version",
             "nvml_version", "gpus", "faults"}


class ScenarioError(ValueError):
    """A scenario file is invalid; the message is one line naming the YAML path."""


@dataclass(frozen=True)
class Process:
    pid: int
    used_mib: int | None = None  # None: NVML reports the usage as not available


@dataclass(frozen=True)
class GpuSpec:
    model: str
    workload: str = "idle"
    mig: bool = False
    ecc: bool | None = None  # None: the model's captured ECC mode
    power_limit_w: int | None = None  # None: the model's default limit
    processes: tuple[Process, ...] = ()


@dataclass(frozen=True)
class Fault:
    """One injected fault; which fields matter depends on `kind` (see FAULT_KEYS)."""

    kind: str
    at: float = 0.0
    until: float | None = None  # None: forever
    gpus: tuple[int, ...] = ()  # empty: every GPU
    functions: tuple[str, ...] = ()  # empty: every function ("*" too)
    error: str = "Unknown"
    seconds: float = 0.0
    code: int = 0
    corrected: int = 0
    uncorrected: int = 0
    generation: int | None = None
    width: int | None = None
    temperature: float | None = None
    hw: bool = True
    links: tuple[int, ...] = ()
    action: int = 0

    def active(self, t: float) -> bool:
        return self.at <= t and (self.until is None or t < self.until)

    def applies(self, gpu: int | None) -> bool:
        return not self.gpus or gpu is None or gpu in self.gpus

    def covers(self, function: str) -> bool:
        return not self.functions or "*" in self.functions or function in self.functions


@dataclass(frozen=True)
class Scenario:
    name: str
    gpus: tuple[GpuSpec, ...]
    description: str = ""
    seed: int = 0
    driver_version: str = "565.57.01"
    cuda_driver_version: int = 12070
    nvml_version: str = ""
    faults: tuple[Fault, ...] = field(default=())

    def faults_of(self, kind: str) -> list[Fault]:
        return [f for f in self.faults if f.kind == kind]


def builtin_scenarios() -> list[str]:
    folder = resources.files("agent.hw") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a YAML file by path."""
    if name_or_path in builtin_scenarios():
        res = resources.files("agent.hw") / "scenarios" / f"{name_or_path}.yaml"
        return parse_scenario(res.read_text(encoding="utf-8"), f"{name_or_path}.yaml")
    path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(builtin_scenarios())
        raise ScenarioError(f"{name_or_path}: no such scenario file or built-in; built-in: {known}")
    return parse_scenario(path.read_text(encoding="utf-8"), str(path))


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ScenarioError(f"{source}: invalid YAML: {' '.join(str(err).split())}") from err
    try:
        return _scenario(data)
    except ScenarioError as err:
        raise ScenarioError(f"{source}: {err}") from None


def _scenario(data: Any) -> Scenario:
    top = _mapping(data, "(top level)", _TOP_KEYS)
    for key in ("name", "gpus"):
        if key not in top:
            raise ScenarioError(f"{key}: required")
    gpus = _gpus(top["gpus"])
    faults = tuple(_fault(f, f"faults[{i}]", len(gpus)) for i, f in
                   enumerate(_typed(top.get("faults", []), "faults", list)))
    cuda = _typed(top.get("cuda_driver_version", 12070), "cuda_driver_version", int)
    driver = _typed(top.get("driver_version", "565.57.01"), "driver_version", str)
    return Scenario(
        name=_typed(top["name"], "name", str),
        description=_typed(top.get("description", ""), "description", str),
        seed=_typed(top.get("seed", 0), "seed", int),
        driver_version=driver,
        cuda_driver_version=cuda,
        nvml_version=_typed(top.get("nvml_version", f"{cuda // 1000}.{driver}"),
                            "nvml_version", str),
        gpus=gpus,
        faults=faults,
    )


def _gpus(value: Any) -> tuple[GpuSpec, ...]:
    entries = [value] if isinstance(value, dict) else _typed(value, "gpus", list)
    specs: list[GpuSpec] = []
    for i, entry in enumerate(entries):
        path = "gpus" if isinstance(value, dict) else f"gpus[{i}]"
        raw = _mapping(entry, path, _GPU_KEYS)
        count = _typed(raw.get("count", 1), f"{path}.count", int)
        if count < 1:
            raise ScenarioError(f"{path}.count: must be at least 1, got {count}")
        specs.extend([_gpu(raw, path)] * count)
    if not specs:
        raise ScenarioError("gpus: at least one GPU is required")
    return tuple(specs)


def _gpu(raw: dict[str, Any], path: str) -> GpuSpec:
    if "model" not in raw:
        raise ScenarioError(f"{path}.model: required")
    model = _typed(raw["model"], f"{path}.model", str)
    if model not in MODELS:
        raise ScenarioError(f'{path}.model: unknown model "{model}"; known: '
                            + ", ".join(model_names()))
    workload = _typed(raw.get("workload", "idle"), f"{path}.workload", str)
    if workload not in WORKLOADS:
        raise ScenarioError(f'{path}.workload: unknown workload "{workload}"; known: '
                            + ", ".join(WORKLOADS))
    mig = _typed(raw.get("mig", False), f"{path}.mig", bool)
    if mig and not MODELS[model].mig_capable:
        raise ScenarioError(f"{path}.mig: {model} is not MIG-capable")
    return GpuSpec(
        model=model, workload=workload, mig=mig,
        ecc=_optional(raw.get("ecc"), f"{path}.ecc", bool),
        power_limit_w=_power_limit(raw.get("power_limit_w"), f"{path}.power_limit_w", model),
        processes=_processes(raw.get("processes", []), f"{path}.processes"),
    )


def _power_limit(value: Any, path: str, model: str) -> int | None:
    limit = _optional(value, path, int)
    _, low, high = MODELS[model].power_w
    if limit is not None and not low <= limit <= high:
        raise ScenarioError(f"{path}: {limit} outside {model}'s range {low}..{high} W")
    return limit


def _processes(value: Any, path: str) -> tuple[Process, ...]:
    out = []
    for i, item in enumerate(_typed(value, path, list)):
        raw = _mapping(item, f"{path}[{i}]", {"pid", "used_mib"})
        if "pid" not in raw:
            raise ScenarioError(f"{path}[{i}].pid: required")
        out.append(Process(_typed(raw["pid"], f"{path}[{i}].pid", int),
                           _optional(raw.get("used_mib"), f"{path}[{i}].used_mib", int)))
    return tuple(out)


def _fault(value: Any, path: str, gpu_count: int) -> Fault:
    kind = _typed(_mapping(value, path, None).get("kind"), f"{path}.kind", str)
    if kind not in FAULT_KEYS:
        raise ScenarioError(f'{path}.kind: unknown fault kind "{kind}"; known: '
                            + ", ".join(sorted(FAULT_KEYS)))
    raw = _mapping(value, path, FAULT_KEYS[kind])
    for key in sorted(_REQUIRED.get(kind, set()) - set(raw)):
        raise ScenarioError(f"{path}.{key}: required for {kind}")
    at = _number(raw.get("at", 0.0), f"{path}.at")
    until = _until(raw, path, at)
    gpus = _gpu_list(raw, path, gpu_count)
    return Fault(
        kind=kind, at=at, until=until, gpus=gpus,
        functions=_functions(raw.get("functions", []), f"{path}.functions"),
        error=_error_name(raw.get("error", "Unknown"), f"{path}.error"),
        seconds=_number(raw.get("seconds", 0.0), f"{path}.seconds"),
        code=_typed(raw.get("code", 0), f"{path}.code", int),
        corrected=_typed(raw.get("corrected", 0), f"{path}.corrected", int),
        uncorrected=_typed(raw.get("uncorrected", 0), f"{path}.uncorrected", int),
        generation=_optional(raw.get("generation"), f"{path}.generation", int),
        width=_optional(raw.get("width"), f"{path}.width", int),
        temperature=_optional_number(raw.get("temperature"), f"{path}.temperature"),
        hw=_typed(raw.get("hw", True), f"{path}.hw", bool),
        links=tuple(_int_list(raw.get("links", []), f"{path}.links")),
        action=_action(raw.get("action", "none"), f"{path}.action"),
    )


def _until(raw: dict[str, Any], path: str, at: float) -> float | None:
    if "until" in raw and "duration" in raw:
        raise ScenarioError(f"{path}: give either until or duration, not both")
    if "duration" in raw:
        return at + _number(raw["duration"], f"{path}.duration")
    until = _optional_number(raw.get("until"), f"{path}.until")
    if until is not None and until < at:
        raise ScenarioError(f"{path}.until: {until} is before at ({at})")
    return until


def _gpu_list(raw: dict[str, Any], path: str, gpu_count: int) -> tuple[int, ...]:
    if "gpu" in raw and "gpus" in raw:
        raise ScenarioError(f"{path}: give either gpu or gpus, not both")
    key = "gpu" if "gpu" in raw else "gpus"
    values = [_typed(raw["gpu"], f"{path}.gpu", int)] if key == "gpu" else _int_list(
        raw.get("gpus", []), f"{path}.gpus")
    for value in values:
        if not 0 <= value < gpu_count:
            raise ScenarioError(f"{path}.{key}: GPU {value} does not exist ({gpu_count} GPUs)")
    return tuple(values)


def _functions(value: Any, path: str) -> tuple[str, ...]:
    names = _typed(value, path, list)
    for i, name in enumerate(names):
        _typed(name, f"{path}[{i}]", str)
        if name != "*" and name not in KNOWN_SYMBOLS:
            raise ScenarioError(f'{path}[{i}]: unknown function "{name}"; see fake_scenario.FUNCTIONS')
    return tuple(names)


def _error_name(value: Any, path: str) -> str:
    name = _typed(value, path, str)
    if not isinstance(getattr(pynvml, f"NVMLError_{name}", None), type):
        raise ScenarioError(f'{path}: unknown NVML error "{name}" (e.g. Unknown, Timeout)')
    return name


def _action(value: Any, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    name = _typed(value, path, str)
    if name not in RECOVERY_ACTIONS:
        raise ScenarioError(f'{path}: unknown action "{name}"; known: ' + ", ".join(RECOVERY_ACTIONS))
    return RECOVERY_ACTIONS[name]


def _mapping(value: Any, path: str, allowed: set[str] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{path}: expected a mapping, got {_kind(value)}")
    for key in value:
        if allowed is not None and key not in allowed:
            prefix = "" if path == "(top level)" else f"{path}."
            raise ScenarioError(f'{prefix}{key}: unknown key; allowed: ' + ", ".join(sorted(allowed)))
    return value


def _typed(value: Any, path: str, kind: type[Any]) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ScenarioError(f"{path}: expected {kind.__name__}, got {_kind(value)} {value!r}")
    return value


def _optional(value: Any, path: str, kind: type[Any]) -> Any:
    return None if value is None else _typed(value, path, kind)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{path}: expected a number, got {_kind(value)} {value!r}")
    return float(value)


def _optional_number(value: Any, path: str) -> float | None:
    return None if value is None else _number(value, path)


def _int_list(value: Any, path: str) -> list[int]:
    return [_typed(v, f"{path}[{i}]", int) for i, v in enumerate(_typed(value, path, list))]


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
