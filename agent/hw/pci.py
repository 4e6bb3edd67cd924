"""The PCI bus: which NVIDIA GPUs a node has, whatever NVML says, and one spelling of addresses.

NVML names a GPU `00000000:9B:00.0`, sysfs `0000:9b:00.0` and the driver's kernel log
`PCI:0000:9b:00` (no function number). `pci_address` turns each into (domain, bus, device),
the key by which a GPU's XIDs from either source meet.

`nvidia_gpus(sysfs_root)` lists the functions under `<sysfs>/bus/pci/devices` whose vendor is
NVIDIA (0x10de) and whose class is a display controller: VGA (0x0300) or 3D (0x0302). NVSwitch
bridges (0x0680) and a GeForce board's audio function (0x0403) are not GPUs.
"""

from __future__ import annotations

import logging
import os
import re

log = logging.getLogger(__name__)

NVIDIA_VENDOR = "0x10de"
GPU_CLASSES = ("0x0300", "0x0302")
_ADDRESS = re.compile(
    r"^(?:PCI:)?(?:(?P<domain>[0-9a-fA-F]{1,8}):)?(?P<bus>[0-9a-fA-F]{2}):(?P<dev>[0-9a-fA-F]{2})"
    r"(?:\.[0-7])?$"
)

PciAddress = tuple[int, int, int]


def pci_address(text: str) -> PciAddress | None:
    """(domain, bus, device) of a PCI address in NVML's, sysfs' or the kernel log's spelling."""
    match = _ADDRESS.match(text.strip())
    if match is None:
        return None
    domain = int(match["domain"] or "0", 16)
    return domain, int(match["bus"], 16), int(match["dev"], 16)


def sysfs_name(address: PciAddress) -> str:
    """(0, 0x9b, 0) -> "0000:9b:00.0", as sysfs and `lspci -D` print it."""
    domain, bus, device = address
    return f"{domain:04x}:{bus:02x}:{device:02x}.0"


def _read(path: str) -> str:
    with open(path, encoding="ascii") as handle:
        return handle.read(64).strip().lower()


def nvidia_gpus(sysfs_root: str) -> list[PciAddress]:
    """The NVIDIA GPUs on the PCI bus, sorted (NVML's default enumeration order).

    An unreadable tree gives an empty list (logged once by the caller's gateway of choice):
    the expectation then comes from configuration and from the GPUs NVML has shown.
    """
    folder = os.path.join(sysfs_root, "bus", "pci", "devices")
    try:
        names = os.listdir(folder)
    except OSError as err:
        log.debug("no PCI device list at %s: %s", folder, err)
        return []
    found = []
    for name in names:
        try:
            vendor = _read(os.path.join(folder, name, "vendor"))
            pci_class = _read(os.path.join(folder, name, "class"))
        except (OSError, UnicodeDecodeError):
            continue
        address = pci_address(name)
        if vendor == NVIDIA_VENDOR and pci_class[:6] in GPU_CLASSES and address is not None:
            found.append(address)
    return sorted(found)
