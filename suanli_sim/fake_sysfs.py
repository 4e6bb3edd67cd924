"""The PCI side of a simulated node's /sys: what the agent scans to know which GPUs to expect.

`write_pci_devices(scenario, sysfs_root)` writes `<root>/bus/pci/devices/<domain:bus:dev.fn>/`
with `vendor`, `device` and `class` files, as the kernel shows them (`0x10de`, `0x2330`,
`0x030200`, one value and a newline each), for every GPU of the scenario, enumerated by NVML
or not (a GPU that failed at boot is still on the bus, `missing` faults). HGX boards also get
their four NVSwitch bridges (class `0x068000`, device `0x22a3`) and GeForce boards their HDMI
audio function (`.1`, class `0x040300`), both NVIDIA devices the agent must not count as GPUs:
as in the `lspci` captures of an HGX H100 node and an A100 VM in `../shared/reference/sysfs/`.
Datacenter GPUs are "3D controller" (0x0302), GeForce "VGA compatible controller" (0x0300).
"""

from __future__ import annotations

from pathlib import Path

from suanli_sim.fake_models import MODELS
from suanli_sim.fake_scenario import Scenario

NVIDIA = 0x10DE
NVSWITCH = (0x22A3, 0x068000)
NVSWITCH_BUSES = (0x83, 0x84, 0x85, 0x86)  # lspci-vvv__gpud-hgx-h100.txt
GEFORCE_AUDIO_CLASS = 0x040300


def _write_function(root: Path, address: str, device: int, pci_class: int) -> None:
    folder = root / "bus" / "pci" / "devices" / address
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in (("vendor", f"0x{NVIDIA:04x}"), ("device", f"0x{device:04x}")):
        (folder / name).write_text(value + "\n")
    (folder / "class").write_text(f"0x{pci_class:06x}\n")


def gpu_addresses(scenario: Scenario) -> list[str]:
    """The sysfs PCI address of every scenario GPU, as the fake NVML reports its bus id."""
    addresses = []
    for index, spec in enumerate(scenario.gpus):
        model = MODELS[spec.model]
        domain, slot = divmod(index, len(model.bus_ids))
        addresses.append(f"{domain:04x}:{model.bus_ids[slot]:02x}:00.0")
    return addresses


def write_pci_devices(scenario: Scenario, sysfs_root: str) -> None:
    root = Path(sysfs_root)
    hgx = False
    for spec, address in zip(scenario.gpus, gpu_addresses(scenario), strict=True):
        model = MODELS[spec.model]
        device = model.pci_device_id >> 16
        geforce = "GeForce" in model.name
        _write_function(root, address, device, 0x030000 if geforce else 0x030200)
        if geforce:
            _write_function(root, address[:-1] + "1", 0x22BA, GEFORCE_AUDIO_CLASS)
        hgx = hgx or model.nvlink_links > 0
    if hgx:
        for bus in NVSWITCH_BUSES:
            _write_function(root, f"0000:{bus:02x}:00.0", *NVSWITCH)
