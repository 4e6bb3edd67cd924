"""GPU XID and NVSwitch SXid lines of the kernel log, parsed into events.

The NVIDIA driver prints an XID as (open-gpu-kernel-modules, `krcReportXid_IMPL`):
    NVRM: Xid (PCI:%04x:%02x:%02x[ GPU-I:%02u[ GPU-CI:%02u]]): %d, [pid=%s, name=%s, ]%s[SUFFIX]
where SUFFIX is " caused by previous Xid %d" (Xid 45 only, when the earlier XID is known),
with no PCI function number, and older drivers print `pid='<unknown>', name=<unknown>`.
The NVSwitch driver prints one SXid fault as several lines that share the SXid number:
    nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 48 LTSSM Fault Up
    nvidia-nvswitch2: SXid (PCI:0000:07:00.0): 20034, Severity 1 Engine instance 60 ...
    nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 20034, Data {0x10000000, ...}
Only the line that says `Fatal` or `Non-fatal` is the event; the others return None, so a fault
counts once. A `Fatal`/`Non-fatal` line without a readable `Link N` (a cut line) is still an
event, with `link` None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_XID = re.compile(
    r"NVRM: Xid \((?:PCI:)?([0-9a-fA-F]{4,8}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})"
    r"(?: GPU-I:(\d+))?(?: GPU-CI:(\d+))?\): (\d+),\s?(.*)",
    re.S,
)
_PROCESS = re.compile(r"pid=([^,]*), name=(.*?), (.*)", re.S)
_CAUSED_BY = re.compile(r"(.*?) caused by previous Xid (\d+)", re.S)
_SXID = re.compile(
    r"(nvidia-nvswitch\d+): SXid \(PCI:([0-9a-fA-F:.]+)\): (\d+), (Fatal|Non-fatal)\b(.*)", re.S
)
_LINK = re.compile(r", Link (-?\d+)\b")
_UNKNOWN = ("<unknown>", "'<unknown>'", "")


@dataclass(frozen=True)
class XidLine:
    """One XID as the driver printed it. `pci` is (domain, bus, device)."""

    pci: tuple[int, int, int]
    xid: int
    pid: int | None
    process: str | None
    message: str
    gpu_instance: int | None = None
    compute_instance: int | None = None
    caused_by: int | None = None


@dataclass(frozen=True)
class SxidLine:
    """One NVSwitch SXid event. `pci` is as printed (with the function number)."""

    switch: str
    pci: str
    sxid: int
    fatal: bool
    link: int | None


def parse_xid(text: str) -> XidLine | None:
    """The XID event in a kernel-log text, or None when the text is not an Xid line."""
    match = _XID.search(text)
    if match is None:
        return None
    domain, bus, device, gpu_i, gpu_ci, xid, rest = match.groups()
    pid = process = None
    if (owner := _PROCESS.fullmatch(rest)) is not None:
        pid_text, name, rest = owner.groups()
        pid = int(pid_text) if pid_text.isdigit() else None
        process = None if name in _UNKNOWN else name
    caused_by = None
    if (cause := _CAUSED_BY.fullmatch(rest)) is not None:
        rest, caused_by = cause.group(1), int(cause.group(2))
    return XidLine(
        pci=(int(domain, 16), int(bus, 16), int(device, 16)),
        xid=int(xid),
        pid=pid,
        process=process,
        message=rest.strip(),
        gpu_instance=None if gpu_i is None else int(gpu_i),
        compute_instance=None if gpu_ci is None else int(gpu_ci),
        caused_by=caused_by,
    )


def parse_sxid(text: str) -> SxidLine | None:
    """The SXid event in a kernel-log text; None for other text and for an event's follow-up
    lines (`Severity ... Engine instance ...`, `Data {...}`)."""
    match = _SXID.search(text)
    if match is None:
        return None
    switch, pci, sxid, severity, rest = match.groups()
    link = _LINK.match(rest)
    number = None if link is None else int(link.group(1))
    return SxidLine(switch, pci, int(sxid), severity == "Fatal", number)
