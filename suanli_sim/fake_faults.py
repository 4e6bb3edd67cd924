"""A scenario's injected faults: the kinds, the keys each kind takes, and their strict parsing.

Each entry of a scenario's `faults:` list is one `Fault`; `FAULT_KEYS` names the keys each kind
accepts (see docs/scenarios.md for what each kind does). Every problem raises `ScenarioError`
with a one-line message naming its YAML path.

`sxid` writes the NVSwitch driver's kernel-log line for an SXid on switch `switch` (0-3, the
four NVSwitches of an HGX board, at the PCI buses of fake_sysfs.NVSWITCH_BUSES), `link` (its
NVLink port, default 0), `code`, `fatal` (default false: "Non-fatal"), `count` times (a burst);
see fake_kmsg. Scenarios without NVLink GPUs have no NVSwitch, so the line names a switch that
is not on the bus, as a driver never would: use it on HGX scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from suanli_sim.fake_yaml import FAULT_FIELDS, ScenarioError, int_list, mapping, number, typed

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
SXID_SWITCHES = 4  # the NVSwitches of an HGX board (fake_sysfs.NVSWITCH_BUSES)


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


def parse_faults(value: Any, gpu_count: int) -> tuple[Fault, ...]:
    """The `faults:` list of a scenario with `gpu_count` GPUs."""
    faults = tuple(
        _fault(f, f"faults[{i}]", gpu_count) for i, f in enumerate(typed(value, "faults", list))
    )
    missing = {g for f in faults if f.kind == "missing" for g in f.gpus or range(gpu_count)}
    if len(missing) == gpu_count:
        raise ScenarioError("faults: every GPU is missing; leave at least one enumerated")
    return faults


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
