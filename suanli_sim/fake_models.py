"""GPU model facts for the fake NVML, loaded from `gpu_models.yaml`, and the NVML surface it offers.

Every value is named in the data file and says where it comes from: the real captures it was read
from (checked by tests/test_fake_models_vs_captures.py) or, where no capture of the model shows
it, a written source. The loader is strict: each model names every field exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from suanli_sim.binding import pynvml
from suanli_sim.fake_functions import FUNCTIONS, KNOWN_SYMBOLS, MEMORY_V2_SYMBOL, SYMBOLS

__all__ = [
    "DATA",
    "FUNCTIONS",
    "KNOWN_SYMBOLS",
    "MEMORY_V2_SYMBOL",
    "MIB",
    "MODELS",
    "ORIGINS",
    "RECOVERY_ACTIONS",
    "SYMBOLS",
    "Clocks",
    "GpuModel",
    "Origin",
    "Thresholds",
    "load_models",
    "model_names",
]

MIB = 1024 * 1024
DATA = Path(__file__).with_name("gpu_models.yaml")
NA = "N/A"  # as nvidia-smi prints a value NVML answers NOT_SUPPORTED for
ARCHITECTURES = {  # "Product Architecture" as nvidia-smi prints it
    "Ampere": pynvml.NVML_DEVICE_ARCH_AMPERE,
    "Ada Lovelace": pynvml.NVML_DEVICE_ARCH_ADA,
    "Hopper": pynvml.NVML_DEVICE_ARCH_HOPPER,
}


@dataclass(frozen=True)
class Clocks:
    """Graphics, SM, memory and video clocks in MHz."""

    graphics: int
    sm: int
    memory: int
    video: int


@dataclass(frozen=True)
class Thresholds:
    """Absolute temperature thresholds in C; None where NVML answers NOT_SUPPORTED."""

    shutdown: int
    slowdown: int
    gpu_max: int
    memory_max: int | None


class PowerLimits(NamedTuple):
    """Default, minimum and maximum power limit in W."""

    default: int
    min: int
    max: int


class PStates(NamedTuple):
    idle: int
    busy: int


class Pcie(NamedTuple):
    max_generation: int
    max_width: int
    idle_generation: int  # Ada cards drop to Gen1 at idle


class Temps(NamedTuple):
    """GPU and memory temperature (C) at idle and at the load capture's power; memory 0 where
    the model has no memory temperature (never read)."""

    gpu_idle: int
    gpu_load: int
    memory_idle: int
    memory_load: int


@dataclass(frozen=True)
class GpuModel:
    """One GPU model: identity, limits, idle/load behaviour and which queries it supports."""

    key: str
    name: str
    architecture: int
    compute_capability: tuple[int, int]
    pci_device_id: int
    pci_subsystem_id: int
    vbios: str
    memory_total_mib: int
    memory_reserved_mib: int
    power_w: PowerLimits
    max_clocks: Clocks
    idle_clocks: Clocks
    busy_clocks: Clocks
    pstates: PStates
    pcie: Pcie
    nvlink_links: int
    thresholds: Thresholds
    idle_power_w: float
    temps_c: Temps
    load_ref_w: float  # the power of the load capture, where temps_c's load values were read
    bus_ids: tuple[int, ...]
    fan: bool
    mig_capable: bool
    ecc: bool
    memory_temp: bool
    serial: bool
    retired_pages: bool
    mig_idle_used_mib: int  # whole GPU in MIG mode, instances idle; 0 if not MIG-capable


@dataclass(frozen=True)
class Origin:
    """Where a group of values comes from: this model's captures (paths under
    ../shared/reference/), or a written source and the other models' captures it stands in."""

    captures: tuple[str, ...]
    source: str | None
    stand_in: tuple[str, ...]


# Every field of a model in the data file, and its type there
FIELDS: dict[str, Any] = {
    "name": str,
    "architecture": str,
    "compute_capability": str,
    "pci_device_id": int,
    "pci_subsystem_id": int,
    "vbios": str,
    "memory_total_mib": int,
    "memory_reserved_mib": int,
    "power_default_w": int,
    "power_min_w": int,
    "power_max_w": int,
    "max_clocks_mhz": dict,
    "idle_clocks_mhz": dict,
    "busy_clocks_mhz": dict,
    "pstate_idle": int,
    "pstate_busy": int,
    "pcie_max_generation": int,
    "pcie_max_width": int,
    "pcie_idle_generation": int,
    "nvlink_links": int,
    "shutdown_c": int,
    "slowdown_c": int,
    "gpu_max_c": int,
    "memory_max_c": (int, str),
    "idle_power_w": (int, float),
    "idle_temp_c": int,
    "idle_memory_temp_c": (int, str),
    "load_power_w": (int, float),
    "load_temp_c": int,
    "load_memory_temp_c": (int, str),
    "bus_ids": list,
    "fan": bool,
    "mig_capable": bool,
    "ecc": bool,
    "memory_temp": bool,
    "serial": bool,
    "retired_pages": bool,
    "mig_idle_used_mib": int,
}
_ORIGIN_KEYS = {"capture", "source", "stand_in"}


def _origin(group: dict[str, Any], where: str) -> Origin:
    captures, source, stand_in = group.get("capture"), group.get("source"), group.get("stand_in")
    if (captures is None) == (source is None):
        raise ValueError(f"{where}: needs either capture or source")
    if stand_in is not None and source is None:
        raise ValueError(f"{where}: stand_in goes with a source")
    for name, paths in (("capture", captures), ("stand_in", stand_in)):
        if paths is not None and (not isinstance(paths, list) or not paths):
            raise ValueError(f"{where}.{name}: expected a list of capture paths")
    return Origin(tuple(captures or ()), source, tuple(stand_in or ()))


def _gather(key: str, groups: Any) -> tuple[dict[str, Any], dict[str, Origin]]:
    """The values of one model's groups, each field once, and each field's origin."""
    if not isinstance(groups, list):
        raise ValueError(f"{key}: expected a list of groups")
    values: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    for index, group in enumerate(groups):
        where = f"{key}[{index}]"
        origin = _origin(group, where)
        for field, value in group.items():
            if field in _ORIGIN_KEYS:
                continue
            if field not in FIELDS:
                raise ValueError(f"{where}.{field}: unknown field")
            if field in values:
                raise ValueError(f"{where}.{field}: given twice")
            kind = FIELDS[field]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise ValueError(f"{where}.{field}: unexpected value {value!r}")
            values[field], origins[field] = value, origin
    required = set(FIELDS) - ({"mig_idle_used_mib"} if not values.get("mig_capable") else set())
    missing = sorted(required - set(values))
    if missing:
        raise ValueError(f"{key}: missing " + ", ".join(missing))
    return values, origins


def _celsius(value: int | str) -> int | None:
    return None if value == NA else int(value)


def _model(key: str, v: dict[str, Any]) -> GpuModel:
    major, minor = v["compute_capability"].split(".")
    return GpuModel(
        key=key,
        name=v["name"],
        architecture=ARCHITECTURES[v["architecture"]],
        compute_capability=(int(major), int(minor)),
        pci_device_id=v["pci_device_id"],
        pci_subsystem_id=v["pci_subsystem_id"],
        vbios=v["vbios"],
        memory_total_mib=v["memory_total_mib"],
        memory_reserved_mib=v["memory_reserved_mib"],
        power_w=PowerLimits(v["power_default_w"], v["power_min_w"], v["power_max_w"]),
        max_clocks=Clocks(**v["max_clocks_mhz"]),
        idle_clocks=Clocks(**v["idle_clocks_mhz"]),
        busy_clocks=Clocks(**v["busy_clocks_mhz"]),
        pstates=PStates(v["pstate_idle"], v["pstate_busy"]),
        pcie=Pcie(v["pcie_max_generation"], v["pcie_max_width"], v["pcie_idle_generation"]),
        nvlink_links=v["nvlink_links"],
        thresholds=Thresholds(
            v["shutdown_c"], v["slowdown_c"], v["gpu_max_c"], _celsius(v["memory_max_c"])
        ),
        idle_power_w=float(v["idle_power_w"]),
        temps_c=Temps(
            v["idle_temp_c"],
            v["load_temp_c"],
            _celsius(v["idle_memory_temp_c"]) or 0,
            _celsius(v["load_memory_temp_c"]) or 0,
        ),
        load_ref_w=float(v["load_power_w"]),
        bus_ids=tuple(v["bus_ids"]),
        fan=v["fan"],
        mig_capable=v["mig_capable"],
        ecc=v["ecc"],
        memory_temp=v["memory_temp"],
        serial=v["serial"],
        retired_pages=v["retired_pages"],
        mig_idle_used_mib=v.get("mig_idle_used_mib", 0),
    )


def load_models(text: str) -> tuple[dict[str, GpuModel], dict[str, dict[str, Origin]]]:
    """The models of a data file's text, and where each of their fields comes from."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("expected a mapping of model names")
    models: dict[str, GpuModel] = {}
    origins: dict[str, dict[str, Origin]] = {}
    for key, groups in data.items():
        values, origins[key] = _gather(key, groups)
        try:
            models[key] = _model(key, values)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{key}: {err}") from err
    return models, origins


MODELS, ORIGINS = load_models(DATA.read_text(encoding="utf-8"))

RECOVERY_ACTIONS = {
    "none": pynvml.NVML_GPU_RECOVERY_ACTION_NONE,
    "gpu_reset": pynvml.NVML_GPU_RECOVERY_ACTION_GPU_RESET,
    "node_reboot": pynvml.NVML_GPU_RECOVERY_ACTION_NODE_REBOOT,
    "drain_p2p": pynvml.NVML_GPU_RECOVERY_ACTION_DRAIN_P2P,
    "drain_and_reset": pynvml.NVML_GPU_RECOVERY_ACTION_DRAIN_AND_RESET,
}


def model_names() -> list[str]:
    return sorted(MODELS)
