"""Which GPUs a node should have: the PCI bus, configuration, and the GPUs seen answering."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.hw.nvml import NvmlGateway
from agent.hw.nvml_backend import BackendOptions, NvmlBackend
from agent.hw.pci import nvidia_gpus, pci_address, sysfs_name
from suanli_sim.binding import pynvml
from suanli_sim.cabi.nvml import CAbiNvml
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import load_scenario, parse_scenario
from suanli_sim.fake_sysfs import write_pci_devices
from tests.gpu_helpers import keyed, node


@pytest.mark.parametrize(
    "text", ["00000000:9B:00.0", "0000:9b:00.0", "PCI:0000:9b:00", "9b:00.0", " 0000:9B:00.0\n"]
)
def test_nvml_sysfs_and_kernel_log_spellings_meet(text: str) -> None:
    assert pci_address(text) == (0, 0x9B, 0)
    assert sysfs_name((0, 0x9B, 0)) == "0000:9b:00.0"


def test_garbage_is_no_address() -> None:
    assert pci_address("GPU-509665ad") is None
    assert pci_address("") is None


@pytest.mark.parametrize(
    ("scenario", "functions", "gpus"),
    [
        ("h100-8", 12, 8),  # + 4 NVSwitch bridges (class 0x0680)
        ("rtx4090-8", 16, 8),  # + 8 HDMI audio functions (class 0x0403)
        ("l40s-4", 4, 4),
    ],
)
def test_gpus_are_counted_not_nvswitches_or_audio_functions(
    tmp_path: Path, scenario: str, functions: int, gpus: int
) -> None:
    write_pci_devices(load_scenario(scenario), str(tmp_path))
    assert len(list((tmp_path / "bus" / "pci" / "devices").iterdir())) == functions
    found = nvidia_gpus(str(tmp_path))
    assert len(found) == gpus
    assert found == sorted(found), "NVML enumerates in PCI bus order"


def test_an_hgx_board_has_four_nvswitch_bridges_that_are_not_gpus(tmp_path: Path) -> None:
    write_pci_devices(load_scenario("h100-8"), str(tmp_path))
    classes = [
        (folder / "class").read_text().strip()
        for folder in (tmp_path / "bus" / "pci" / "devices").iterdir()
    ]
    assert classes.count("0x068000") == 4 and classes.count("0x030200") == 8


def test_no_pci_tree_is_no_expectation(tmp_path: Path) -> None:
    assert nvidia_gpus(str(tmp_path / "nowhere")) == []


EIGHT_WITH_A_STUCK_FABRIC = """
name: configured
gpus: {model: H100-SXM5-80GB, count: 8, workload: training}
faults:
  - {kind: fabric_incomplete, gpu: 5, at: 10}
"""


def test_a_fabric_registration_that_does_not_complete_fails_the_fabric_check() -> None:
    gpus = node(EIGHT_WITH_A_STUCK_FABRIC)
    before = gpus.at(5.0)
    assert keyed(before, "suanli_gpu_health_check_failed")["5"]["fabric"] == 0.0
    after = gpus.at(20.0)
    assert keyed(after, "suanli_gpu_health_check_failed")["5"]["fabric"] == 1.0
    infos = [labels for (name, labels) in after if name == "suanli_gpu_fabric_info"]
    states = {labels[0]: (labels[2], labels[3]) for labels in infos}
    assert states["5"] == ("in_progress", str(pynvml.NVML_ERROR_NOT_READY))
    assert states["0"] == ("completed", "success")


def test_configured_expectation_beyond_the_bus_shows_in_suanli_gpus() -> None:
    fake = FakeNvml(
        parse_scenario(EIGHT_WITH_A_STUCK_FABRIC), clock=lambda: 1.0, sleep=lambda s: None
    )
    options = BackendOptions(xid_events=False, sysfs="/nonexistent", expected_gpus=10)
    backend = NvmlBackend(NvmlGateway(CAbiNvml(fake)), options)
    try:
        inventory = backend.read().inventory
    finally:
        backend.close()
    assert inventory is not None
    assert (inventory.expected, inventory.present, inventory.lost) == (10, 8, 2)
