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
    jobs:                               # who runs where, when (see fake_jobs)
      - {id: "1320003", scheduler: slurm-v2, gpus: [0, 1], start: 30, end: 900}

Faults are parsed by `fake_faults`. Every problem raises `ScenarioError` with a one-line message
naming its YAML path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from agent import safe_yaml
from suanli_sim.fake_faults import Fault, parse_faults
from suanli_sim.fake_jobs import JobSpec, Process, parse_jobs, parse_processes
from suanli_sim.fake_mig import MigSpec, parse_mig
from suanli_sim.fake_models import MODELS, model_names
from suanli_sim.fake_workload import WORKLOADS
from suanli_sim.fake_yaml import ScenarioError, int_list, mapping, optional, typed

__all__ = [
    "WORKLOADS",
    "GpuSpec",
    "JobSpec",
    "MigSpec",
    "Process",
    "Scenario",
    "ScenarioError",
    "load_scenario",
]

_GPU_KEYS = {"model", "count", "workload", "mig", "ecc", "power_limit_w", "processes"}
_TOP_KEYS = {"name", "description", "seed", "driver_version", "cuda_driver_version"}
_TOP_KEYS |= {"nvml_version", "gpus", "faults", "jobs", "latency", "infiniband", "kubelet"}
_IB_KEYS = {"ports", "down", "flaky"}
LATENCIES = ("none", "h200")  # fake_latency.PROFILES


@dataclass(frozen=True)
class GpuSpec:
    model: str
    workload: str = "idle"
    mig: tuple[MigSpec, ...] = ()  # the GPU instances of a GPU in MIG mode; empty: MIG disabled
    ecc: bool | None = None  # None: the model's captured ECC mode
    power_limit_w: int | None = None  # None: the model's default limit
    processes: tuple[Process, ...] = ()


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
    faults = parse_faults(top.get("faults", []), len(gpus))
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
