"""Readers for real nvidia-smi captures (tests/fixtures/nvidia-smi, verbatim copies of files in
../shared/reference): `nvidia-smi -q` text, `-q -x` XML, `--query-gpu` CSV and `nvlink -s`.

Nothing here knows the fake: tests read what a real driver printed and compare the fake with it.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import statistics
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"
_FIELD = re.compile(r"^( *)(\S.*?) +:(?: (.*))?$")
_LINK = re.compile(r"^\s+Link \d+: ")


@cache
def text(name: str) -> str:
    """A capture's text, by its path under the reference folder (e.g. "nvidia-smi/x.txt")."""
    return (FIXTURES / name).read_text(encoding="utf-8")


def _gpus(lines: list[str]) -> list[dict[str, str]]:
    gpus: list[dict[str, str]] = []
    path: list[tuple[int, str]] = []  # (indent, section name) of the open sections
    for line in lines:
        if line.startswith("GPU ") and not line.startswith("GPU 0:"):
            gpus.append({"Bus Id": line[4:].strip()})
            path = []
            continue
        if not gpus or not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        path = [(i, name) for i, name in path if i < indent]
        found = _FIELD.match(line)
        if found is None:  # a section header
            path.append((indent, line.strip()))
            continue
        key = "/".join([name for _, name in path] + [found.group(2).strip()])
        gpus[-1].setdefault(key, (found.group(3) or "").strip())  # MIG Device: the first one
    return gpus


@cache
def query(name: str) -> tuple[dict[str, str], ...]:
    """`nvidia-smi -q`: one dict per GPU, keys the section path ("FB Memory Usage/Total"), and
    values as printed ("81559 MiB"); the GPU header's address is under "Bus Id"."""
    return tuple(_gpus(text(name).splitlines()))


@cache
def header(name: str) -> dict[str, str]:
    """The lines of `nvidia-smi -q` before the first GPU ("Driver Version", "CUDA Version")."""
    found: dict[str, str] = {}
    for line in text(name).splitlines():
        if line.startswith("GPU "):
            break
        match = _FIELD.match(line)
        if match:
            found[match.group(2)] = (match.group(3) or "").strip()
    return found


@cache
def query_csv(name: str) -> tuple[dict[str, str], ...]:
    """`nvidia-smi --query-gpu=... --format=csv`: one dict per GPU, keyed by the header."""
    rows = list(csv.reader(text(name).splitlines(), skipinitialspace=True))
    return tuple(dict(zip(rows[0], row, strict=True)) for row in rows[1:] if row)


@cache
def query_xml(name: str) -> tuple[ET.Element, ...]:
    """`nvidia-smi -q -x`: the <gpu> elements."""
    return tuple(ET.fromstring(text(name)).iter("gpu"))


def nvlink_links(name: str) -> list[int]:
    """`nvidia-smi nvlink -s` (inside a capture's extra sections): the number of links listed
    for each GPU, 0 where it says "Device does not have or support Nvlink"."""
    lines = text(name).splitlines()
    starts = [
        i for i, line in enumerate(lines) if re.search(r"nvidia-smi nvlink (-s|--status)", line)
    ]
    if starts:  # a capture of several commands: only the lines of that one, up to the next
        lines = list(itertools.dropwhile(lambda x: x.startswith("#"), lines[starts[0] + 1 :]))
        ends = [i for i, line in enumerate(lines) if line.startswith(("#", ">"))]
        lines = lines[: ends[0] if ends else None]
    counts: list[int] = []
    for line in lines:
        if re.match(r"^GPU \d+: ", line):
            counts.append(0)
        elif counts and _LINK.match(line):
            counts[-1] += 1
    return counts


def number(value: str) -> float:
    """The number at the start of a printed value: "81559 MiB" -> 81559, "700.00 W" -> 700,
    "16x" -> 16, "P8" -> 8, "0x233010DE" -> 0x233010DE."""
    value = value.strip()
    if value.startswith("0x"):
        return int(value, 16)
    found = re.match(r"^P?(-?\d+(?:\.\d+)?)", value)
    if found is None:
        raise ValueError(f"no number in {value!r}")
    return float(found.group(1))


def is_na(value: str) -> bool:
    return value.strip() in ("N/A", "[N/A]", "")


# --- what a capture says of one field of the fake's GPU models (suanli_sim/gpu_models.yaml) ----


class Unreadable(LookupError):
    """The capture does not show this field."""


def _power(g: dict[str, str], key: str) -> float:
    for section in ("GPU Power Readings", "Power Readings"):
        for name in (key,) if key != "Power Draw" else ("Average Power Draw", "Power Draw"):
            if f"{section}/{name}" in g:
                return number(g[f"{section}/{name}"])
    raise Unreadable(key)


def _celsius(g: dict[str, str], key: str) -> float | str:
    value = g[f"Temperature/{key}"]
    return "N/A" if is_na(value) else number(value)


def _thresholds(g: dict[str, str]) -> dict[str, float | str]:
    """Absolute thresholds as printed, or derived from the T.Limit margins a newer driver prints:
    the maximum operating temperature is the current one plus the margin to it."""
    if "Temperature/GPU Shutdown Temp" in g:
        return {
            "shutdown_c": _celsius(g, "GPU Shutdown Temp"),
            "slowdown_c": _celsius(g, "GPU Slowdown Temp"),
            "gpu_max_c": _celsius(g, "GPU Max Operating Temp"),
            "memory_max_c": _celsius(g, "Memory Max Operating Temp"),
        }
    gpu_max = number(g["Temperature/GPU Current Temp"]) + number(g["Temperature/GPU T.Limit Temp"])
    found: dict[str, float | str] = {
        "gpu_max_c": gpu_max,
        "shutdown_c": gpu_max - number(g["Temperature/GPU Shutdown T.Limit Temp"]),
        "slowdown_c": gpu_max - number(g["Temperature/GPU Slowdown T.Limit Temp"]),
    }
    if is_na(g["Temperature/Memory Max Operating T.Limit Temp"]):
        found["memory_max_c"] = "N/A"  # no memory temperature at all
    return found  # otherwise only a margin: the absolute memory maximum is not shown


def _clocks(g: dict[str, str], section: str) -> dict[str, float]:
    names = {"graphics": "Graphics", "sm": "SM", "memory": "Memory", "video": "Video"}
    return {k: number(g[f"{section}/{v}"]) for k, v in names.items()}


def _ecc(g: dict[str, str]) -> bool:
    return g.get("ECC Mode/Current", g.get("Ecc Mode/Current")) == "Enabled"


_LINK_INFO = "PCI/GPU Link Info/"
TEXT_FIELDS = {  # field -> what one GPU of `nvidia-smi -q` says of it
    "name": lambda g: g["Product Name"],
    "architecture": lambda g: g["Product Architecture"],
    "pci_device_id": lambda g: number(g["PCI/Device Id"]),
    "pci_subsystem_id": lambda g: number(g["PCI/Sub System Id"]),
    "vbios": lambda g: g["VBIOS Version"],
    "memory_total_mib": lambda g: number(g["FB Memory Usage/Total"]),
    "memory_reserved_mib": lambda g: number(g["FB Memory Usage/Reserved"]),
    "power_default_w": lambda g: _power(g, "Default Power Limit"),
    "power_min_w": lambda g: _power(g, "Min Power Limit"),
    "power_max_w": lambda g: _power(g, "Max Power Limit"),
    "max_clocks_mhz": lambda g: _clocks(g, "Max Clocks"),
    "idle_clocks_mhz": lambda g: _clocks(g, "Clocks"),
    "busy_clocks_mhz": lambda g: _clocks(g, "Clocks"),
    "pstate_idle": lambda g: number(g["Performance State"]),
    "pstate_busy": lambda g: number(g["Performance State"]),
    "pcie_max_generation": lambda g: number(g[_LINK_INFO + "PCIe Generation/Device Max"]),
    "pcie_max_width": lambda g: number(g[_LINK_INFO + "Link Width/Max"]),
    "pcie_idle_generation": lambda g: number(g[_LINK_INFO + "PCIe Generation/Current"]),
    "shutdown_c": lambda g: _thresholds(g)["shutdown_c"],
    "slowdown_c": lambda g: _thresholds(g)["slowdown_c"],
    "gpu_max_c": lambda g: _thresholds(g)["gpu_max_c"],
    "memory_max_c": lambda g: _thresholds(g)["memory_max_c"],
    "idle_power_w": lambda g: _power(g, "Power Draw"),
    "load_power_w": lambda g: _power(g, "Power Draw"),
    "idle_temp_c": lambda g: _celsius(g, "GPU Current Temp"),
    "load_temp_c": lambda g: _celsius(g, "GPU Current Temp"),
    "idle_memory_temp_c": lambda g: _celsius(g, "Memory Current Temp"),
    "load_memory_temp_c": lambda g: _celsius(g, "Memory Current Temp"),
    "fan": lambda g: not is_na(g["Fan Speed"]),
    "mig_capable": lambda g: not is_na(g["MIG Mode/Current"]),
    "ecc": _ecc,
    "memory_temp": lambda g: not is_na(g["Temperature/Memory Current Temp"]),
    "serial": lambda g: not is_na(g["Serial Number"]),
    "retired_pages": lambda g: not is_na(g["Retired Pages/Single Bit ECC"]),
    "mig_idle_used_mib": lambda g: number(g["FB Memory Usage/Used"]),
}
# Per-GPU readings: in a capture of several GPUs, the middle GPU's (statistics.median_low);
# every other field must read the same on every GPU of a capture.
READINGS = {
    "idle_power_w",
    "idle_temp_c",
    "idle_memory_temp_c",
    "idle_clocks_mhz",
    "shutdown_c",
    "slowdown_c",
    "gpu_max_c",
    "nvlink_links",
}


def _middle(values: list[Any]) -> Any:
    if isinstance(values[0], dict):
        return {k: statistics.median_low([v[k] for v in values]) for k in values[0]}
    return statistics.median_low(values)


def _from_text(field: str, name: str) -> Any:
    gpus = query(name)
    if field == "bus_ids":
        return [int(g["Bus Id"].split(":")[1], 16) for g in gpus]
    if field == "mig_idle_used_mib" and gpus[0]["MIG Mode/Current"] != "Enabled":
        raise Unreadable("not in MIG mode")
    try:
        values = [TEXT_FIELDS[field](g) for g in gpus]
    except KeyError as err:
        raise Unreadable(str(err)) from err
    if field in READINGS:
        return _middle(values)
    assert all(v == values[0] for v in values), f"{field} differs between GPUs of {name}"
    return values[0]


def _from_json(field: str, name: str) -> Any:
    """pynvml's own answers on the real H200 (h200/pynvml-direct-idle.json)."""
    throttle = json.loads(text(name))["gpus"][0]["ThrottleTemp"]
    keys = {"shutdown_c": "shutdown", "slowdown_c": "slowdown", "gpu_max_c": "gpu_max"}
    if field not in {**keys, "memory_max_c": ""}:
        raise Unreadable(field)
    return throttle[keys.get(field, "mem_max")]


def _from_xml(field: str, name: str) -> Any:
    if field != "mig_idle_used_mib":
        raise Unreadable(field)
    (gpu,) = query_xml(name)
    assert gpu.findtext("mig_mode/current_mig") == "Enabled"
    return number(gpu.findtext("fb_memory_usage/used") or "")


def _from_csv(field: str, name: str) -> Any:
    if field != "compute_capability":
        raise Unreadable(field)
    (row,) = query_csv(name)
    return row["compute_cap"]


def read_field(field: str, name: str) -> Any:
    """What the capture `name` (a path under the reference folder) says of a model field, in the
    data file's units; Unreadable if it does not show it."""
    if name.startswith("nvidia-smi-extra/"):
        if field != "nvlink_links":
            raise Unreadable(field)
        return _middle(nvlink_links(name))
    readers = {".json": _from_json, ".xml": _from_xml, ".csv": _from_csv, ".txt": _from_text}
    return readers[Path(name).suffix](field, name)
