"""Scenarios for the fake NVML: GPUs, workloads and injected faults, loaded from strict YAML.

A scenario file (built-in ones live in `suanli_sim/scenarios/<name>.yaml`)::

    name: h100-8
    description: 8x H100 SXM5 training
    seed: 1
    driver_version: "565.57.01"
    cuda_driver_version: 12070          # nvmlSystemGetCudaDriverVersion (12.7)
    nvml_version: "12.565.57.01"        # optional; default "<cuda major>.<driver_version>"
    gpus:                               # a list (or one mapping); `count` repeats an entry
      - {model: H100-SXM5-80GB, count: 6, workload: training}
      - {model: H100-SXM5-80GB, mig: true}  # MIG mode, the model's captured layout
      - model: H100-SXM5-80GB             # MIG mode with GPU instance profiles (fake_mig)
        workload: inference
        mig: [3g.40gb, 2g.20gb, {profile: 1g.10gb, workload: training}, 1g.10gb]
    faults:
      - {kind: gpu_lost, gpu: 3, at: 60, until: 120}
      - {kind: xid, gpu: 3, at: 60, code: 79}           # `count: 1000` for a burst
      - {kind: events_unsupported, gpu: 7}              # event registration: NOT_SUPPORTED
      - {kind: hang, gpu: 2, at: 30, until: 90}         # NVML calls on GPU 2 block
      - {kind: missing, gpu: 6}                         # failed at boot: on the bus, not listed
      - {kind: fabric_incomplete, gpu: 1, at: 10}       # NVSwitch fabric registration stuck
      - {kind: sxid, at: 40, switch: 1, link: 48, code: 20034, fatal: true}

`sxid` writes the NVSwitch driver's kernel-log line for an SXid on switch `switch` (0-3, the
four NVSwitches of an HGX board, at the PCI buses of fake_sysfs.NVSWITCH_BUSES), `link` (its
NVLink port, default 0), `code`, `fatal` (default false: "Non-fatal"), `count` times (a burst);
see fake_kmsg. Scenarios without NVLink GPUs have no NVSwitch, so the line names a switch that
is not on the bus, as a driver never would: use it on HGX scenarios.
    jobs:                               # who runs where, when (see fake_jobs)
      - {id: "1320003", scheduler: slurm-v2, gpus: [0, 1], start: 30, end: 900}

Every problem raises `ScenarioError` with a one-line message naming its YAML path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from agent import safe_yaml
from suanli_sim.fake_jobs import JobSpec, Process, parse_jobs, parse_processes
from suanli_sim.fake_mig import MigSpec, parse_mig
from suanli_sim.fake_models import MODELS, model_names
from suanli_sim.fake_workload import WORKLOADS
from suanli_sim.fake_yaml import (
    FAULT_FIELDS,
    ScenarioError,
    int_list,
    mapping,
    number,
    optional,
    typed,
)

__all__ = [
    "WORKLOADS",
    "Fault",
    "GpuSpec",
    "JobSpec",
    "MigSpec",
    "Process",
    "Scenario",
    "ScenarioError",
    "load_scenario",
]

_COMMON = {"kind", "at", "until", "duration", "gpu", "gpus"}
FAULT_KEYS: dict[str, set[str]] = {
    "gpu_lost": _COMMON,
    "error_storm": _COMMON | {"functions", "error"},
    "slow_call": _COMMON | {"functions", "seconds"},
    "nvml_absent": {"kind", "until"},
    "driver_not_loaded": {"kind", "until"},
    "not_supported": _COMMON | {"functions"},
    "missing_functions": {"kind", "functions"},
    "xid": {"kind", "at", "gpu", "gpus", "code", "count"},  # count: a burst of identical XIDs
    "ecc": {"kind", "at", "gpu", "gpus", "corrected", "uncorrected"},
    "row_remap_pending": _COMMON,
    "row_remap_failure": {"kind", "at", "gpu", "gpus"},
    "pcie_degraded": _COMMON | {"generation", "width"},
    "thermal": _COMMON | {"temperature", "hw"},
    "nvlink_down": _COMMON | {"links"},
    "recovery_action": _COMMON | {"action"},
    "events_unsupported": {"kind", "gpu", "gpus"},  # event registration answers NOT_SUPPORTED
    "hang": _COMMON | {"functions"},  # calls on the GPU's handle block while it lasts
    # the process making the call dies (SIGABRT), as a real driver's bad call kills it
    "segfault": _COMMON | {"functions"},
    "missing": {"kind", "gpu", "gpus"},  # failed at boot: on the PCI bus, not enumerated
    "fabric_incomplete": _COMMON,  # NVSwitch fabric registration stuck in progress
    # an NVSwitch SXid in the kernel log (fake_kmsg): switch 0-3 of an HGX board
    "sxid": {"kind", "at", "switch", "link", "code", "fatal", "count"},
}
_REQUIRED = {
    "slow_call": {"functions", "seconds"},
    "not_supported": {"functions"},
    "missing_functions": {"functions"},
    "segfault": {"functions"},
    "xid": {"code"},
    "sxid": {"code"},
}
_GPU_KEYS = {"model", "count", "workload", "mig", "ecc", "power_limit_w", "processes"}
_TOP_KEYS = {"name", "description", "seed", "driver_version", "cuda_driver_version"}
_TOP_KEYS |= {"nvml_version", "gpus", "faults", "jobs", "latency", "infiniband", "kubelet"}
_IB_KEYS = {"ports", "down", "flaky"}
LATENCIES = ("none", "h200")
SXID_SWITCHES = (
    4  # the NVSwitches of an HGX board (fake_sysfs.NVSWITCH_BUSES)  # fake_latency.PROFILES
)


@dataclass(frozen=True)
class GpuSpec:
    model: str
    workload: str = "idle"
    mig: tuple[MigSpec, ...] = ()  # the GPU instances of a GPU in MIG mode; empty: MIG disabled
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
    count: int = 1
    corrected: int = 0
    uncorrected: int = 0
    generation: int | None = None
    width: int | None = None
    temperature: float | None = None
    hw: bool = True
    links: tuple[int, ...] = ()
    action: int = 0
    switch: int = 0  # sxid: the NVSwitch (nvidia-nvswitch<N>, fake_sysfs.NVSWITCH_BUSES[N])
    link: int = 0  # sxid: the switch's NVLink port
    fatal: bool = False  # sxid: "Fatal" or "Non-fatal" in the line

    def active(self, t: float) -> bool:
        return self.at <= t and (self.until is None or t < self.until)

    def applies(self, gpu: int | None) -> bool:
        return not self.gpus or gpu is None or gpu in self.gpus

    def covers(self, function: str) -> bool:
        return not self.functions or "*" in self.functions or function in self.functions


@dataclass(frozen=True)
class InfinibandSpec:
    """The node's NDR ports (fake_infiniband): how many, which are down, which flap."""

    ports: int = 0
    down: tuple[int, ...] = ()
    flaky: tuple[int, ...] = ()


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
    jobs: tuple[JobSpec, ...] = field(default=())  # see fake_jobs
    latency: str = "none"  # "h200": calls take the time they took on a real H200
    infiniband: InfinibandSpec = field(default_factory=lambda: InfinibandSpec())
    kubelet: bool = False  # serve the pods' GPUs on a simulated kubelet (fake_kubelet)

    def faults_of(self, kind: str) -> list[Fault]:
        return [f for f in self.faults if f.kind == kind]


def builtin_scenarios() -> list[str]:
    folder = resources.files("suanli_sim") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a YAML file by path."""
    if name_or_path in builtin_scenarios():
        res = resources.files("suanli_sim") / "scenarios" / f"{name_or_path}.yaml"
        return parse_scenario(res.read_text(encoding="utf-8"), f"{name_or_path}.yaml")
    path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(builtin_scenarios())
        raise ScenarioError(f"{name_or_path}: no such scenario file or built-in; built-in: {known}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{name_or_path}: not a YAML scenario (not UTF-8 text)") from None
    except OSError as err:
        raise ScenarioError(f"{name_or_path}: cannot read: {err.strerror or err}") from None
    return parse_scenario(text, str(path))


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    try:
        data = safe_yaml.load(text)
    except yaml.YAMLError as err:
        raise ScenarioError(f"{source}: invalid YAML: {safe_yaml.problem(err)}") from None
    try:
        return _scenario(data)
    except ScenarioError as err:
        raise ScenarioError(f"{source}: {err}") from None


def _scenario(data: Any) -> Scenario:
    top = mapping(data, "(top level)", _TOP_KEYS)
    for key in ("name", "gpus"):
        if key not in top:
            raise ScenarioError(f"{key}: required")
    gpus = _gpus(top["gpus"])
    faults = tuple(
        _fault(f, f"faults[{i}]", len(gpus))
        for i, f in enumerate(typed(top.get("faults", []), "faults", list))
    )
    missing = {g for f in faults if f.kind == "missing" for g in f.gpus or range(len(gpus))}
    if len(missing) == len(gpus):
        raise ScenarioError("faults: every GPU is missing; leave at least one enumerated")
    seed = typed(top.get("seed", 0), "seed", int)
    jobs = parse_jobs(top.get("jobs", []), seed, [len(g.mig) for g in gpus])
    cuda = typed(top.get("cuda_driver_version", 12070), "cuda_driver_version", int)
    driver = typed(top.get("driver_version", "565.57.01"), "driver_version", str)
    latency = typed(top.get("latency", "none"), "latency", str)
    if latency not in LATENCIES:
        raise ScenarioError(f'latency: must be one of {", ".join(LATENCIES)}, got "{latency}"')
    return Scenario(
        name=typed(top["name"], "name", str),
        description=typed(top.get("description", ""), "description", str),
        seed=seed,
        driver_version=driver,
        cuda_driver_version=cuda,
        nvml_version=typed(
            top.get("nvml_version", f"{cuda // 1000}.{driver}"), "nvml_version", str
        ),
        gpus=gpus,
        faults=faults,
        jobs=jobs,
        latency=latency,
        infiniband=_infiniband(top.get("infiniband", {})),
        kubelet=typed(top.get("kubelet", False), "kubelet", bool),
    )


def _infiniband(value: Any) -> InfinibandSpec:
    raw = mapping(value, "infiniband", _IB_KEYS)
    ports = typed(raw.get("ports", 0), "infiniband.ports", int)
    if not 0 <= ports <= 64:
        raise ScenarioError(f"infiniband.ports: must be 0 to 64, got {ports}")
    lists = {k: tuple(int_list(raw.get(k, []), f"infiniband.{k}")) for k in ("down", "flaky")}
    for key, ports_listed in lists.items():
        if any(not 0 <= p < ports for p in ports_listed):
            raise ScenarioError(f"infiniband.{key}: ports are 0 to {ports - 1}")
    return InfinibandSpec(ports, lists["down"], lists["flaky"])


def _gpus(value: Any) -> tuple[GpuSpec, ...]:
    entries = [value] if isinstance(value, dict) else typed(value, "gpus", list)
    specs: list[GpuSpec] = []
    for i, entry in enumerate(entries):
        path = "gpus" if isinstance(value, dict) else f"gpus[{i}]"
        raw = mapping(entry, path, _GPU_KEYS)
        count = typed(raw.get("count", 1), f"{path}.count", int)
        if count < 1:
            raise ScenarioError(f"{path}.count: must be at least 1, got {count}")
        specs.extend([_gpu(raw, path)] * count)
    if not specs:
        raise ScenarioError("gpus: at least one GPU is required")
    return tuple(specs)


def _gpu(raw: dict[str, Any], path: str) -> GpuSpec:
    if "model" not in raw:
        raise ScenarioError(f"{path}.model: required")
    model = typed(raw["model"], f"{path}.model", str)
    if model not in MODELS:
        raise ScenarioError(
            f'{path}.model: unknown model "{model}"; known: ' + ", ".join(model_names())
        )
    workload = typed(raw.get("workload", "idle"), f"{path}.workload", str)
    if workload not in WORKLOADS:
        raise ScenarioError(
            f'{path}.workload: unknown workload "{workload}"; known: ' + ", ".join(WORKLOADS)
        )
    return GpuSpec(
        model=model,
        workload=workload,
        mig=parse_mig(raw.get("mig", False), f"{path}.mig", model, workload),
        ecc=optional(raw.get("ecc"), f"{path}.ecc", bool),
        power_limit_w=_power_limit(raw.get("power_limit_w"), f"{path}.power_limit_w", model),
        processes=parse_processes(raw.get("processes", []), f"{path}.processes"),
    )


def _power_limit(value: Any, path: str, model: str) -> int | None:
    limit: int | None = optional(value, path, int)
    _, low, high = MODELS[model].power_w
    if limit is not None and not low <= limit <= high:
        raise ScenarioError(f"{path}: {limit} outside {model}'s range {low}..{high} W")
    return limit


def _fault(value: Any, path: str, gpu_count: int) -> Fault:
    kind = typed(mapping(value, path, None).get("kind"), f"{path}.kind", str)
    if kind not in FAULT_KEYS:
        known = ", ".join(sorted(FAULT_KEYS))
        raise ScenarioError(f'{path}.kind: unknown fault kind "{kind}"; known: {known}')
    raw = mapping(value, path, FAULT_KEYS[kind])
    missing = sorted(_REQUIRED.get(kind, set()) - set(raw))
    if missing:
        raise ScenarioError(f"{path}.{missing[0]}: required for {kind}")
    fields = {k: FAULT_FIELDS[k](v, f"{path}.{k}") for k, v in raw.items() if k in FAULT_FIELDS}
    at = fields.setdefault("at", 0.0)
    if "duration" in raw:
        if "until" in raw:
            raise ScenarioError(f"{path}: give either until or duration, not both")
        fields["until"] = at + number(raw["duration"], f"{path}.duration")
    if fields.get("until") is not None and fields["until"] < at:
        raise ScenarioError(f"{path}.until: {fields['until']} is before at ({at})")
    if kind == "sxid" and not 0 <= fields.get("switch", 0) < SXID_SWITCHES:
        raise ScenarioError(f"{path}.switch: NVSwitches are 0 to {SXID_SWITCHES - 1}")
    return Fault(kind=kind, gpus=_gpu_list(raw, path, gpu_count), **fields)


def _gpu_list(raw: dict[str, Any], path: str, gpu_count: int) -> tuple[int, ...]:
    if "gpu" in raw and "gpus" in raw:
        raise ScenarioError(f"{path}: give either gpu or gpus, not both")
    key = "gpu" if "gpu" in raw else "gpus"
    values = (
        [typed(raw["gpu"], f"{path}.gpu", int)]
        if key == "gpu"
        else int_list(raw.get("gpus", []), f"{path}.gpus")
    )
    for value in values:
        if not 0 <= value < gpu_count:
            raise ScenarioError(f"{path}.{key}: GPU {value} does not exist ({gpu_count} GPUs)")
    return tuple(values)
