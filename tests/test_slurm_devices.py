"""A Slurm job's GPUs from its cgroup v1 device list, process or not; cgroup v2 says it cannot.

The trees are what slurmd's task/cgroup plugin leaves with `ConstrainDevices=yes`: a devices
cgroup per job whose `devices.list` allows the job's `/dev/nvidia<minor>` (major 195) besides
the usual character devices, and the driver's `/proc/driver/nvidia/gpus/<bus>/information`
naming each GPU's minor and UUID. The node is the simulator's 8x H100 under the whole agent.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.hw.slurm_devices import device_minors, gpu_minors
from tests.kubelet_helpers import Node, jobs_on, labelled, source_state

JOB_LIST = """\
c 1:3 rwm
c 1:5 rwm
c 1:7 rwm
c 1:8 rwm
c 1:9 rwm
c 5:0 rwm
c 5:2 rwm
c 136:* rwm
c 195:255 rwm
c 195:254 rwm
c 195:{a} rwm
c 195:{b} rwm
c 508:0 rwm
c 508:1 rwm
"""
INFORMATION = """\
Model: \t\t NVIDIA H100 80GB HBM3
IRQ:   \t\t 0
GPU UUID: \t {uuid}
Video BIOS: \t 96.00.99.00.01
Bus Type: \t PCIe
DMA Size: \t 52 bits
DMA Mask: \t 0xfffffffffffff
Bus Location: \t {bus}
Device Minor: \t {minor}
GPU Firmware: \t 565.57.01
GPU Excluded:\t No
"""
# The driver numbers minors in its probe order, which need not be NVML's PCI order.
MINOR_OF_INDEX = {0: 0, 1: 1, 2: 2, 3: 3, 4: 6, 5: 7, 6: 4, 7: 5}


@pytest.fixture
def root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="slurm", dir="/tmp") as folder:
        yield Path(folder)


def write_driver_information(node: Node) -> None:
    for labels in labelled(node.sample(), "suanli_gpu_info"):
        bus = labels["pci_bus_id"][4:].lower()  # NVML's 8-digit domain; the driver's is 4
        minor = MINOR_OF_INDEX[int(labels["gpu"])]
        folder = node.root / "proc/driver/nvidia/gpus" / bus
        folder.mkdir(parents=True)
        text = INFORMATION.format(uuid=labels["uuid"], bus=bus, minor=minor)
        (folder / "information").write_text(text)


def write_job(root: Path, uid: int, job: int, text: str) -> None:
    folder = root / f"sys/fs/cgroup/devices/slurm/uid_{uid}/job_{job}"
    (folder / "step_0").mkdir(parents=True)
    (folder / "devices.list").write_text(text)
    (folder / "step_0" / "devices.list").write_text(text)


def test_a_slurm_job_holding_gpus_without_a_process_is_attributed(root: Path) -> None:
    node = Node(root, kubelet_socket="")
    try:
        write_driver_information(node)
        write_job(root, 20821, 4824887, JOB_LIST.format(a=4, b=5))  # minors 4, 5: GPUs 6, 7
        write_job(root, 20822, 4824901, "a *:* rwm\n")  # allows every device: says nothing
        snapshot = node.sample()
        for _ in range(100):
            if source_state(snapshot).get("slurm_cgroup") == (1.0, "ok") and 6 in jobs_on(snapshot):
                break
            snapshot = node.sample()
        info = labelled(snapshot, "suanli_gpu_job_info")
        slurm = sorted(
            (x["gpu"], x["job_id"], x["user"]) for x in info if x["scheduler"] == "slurm"
        )
        assert slurm == [("6", "4824887", "20821"), ("7", "4824887", "20821")]
        assert source_state(snapshot) == {"slurm_cgroup": (1.0, "ok")}
    finally:
        node.close()


def test_a_job_both_the_prolog_mapping_and_its_device_list_name_is_one_job(root: Path) -> None:
    mapping = root / "hpc-job-mapping"
    mapping.mkdir()
    (mapping / "6").write_text("4824887\n")  # the prolog's file for GPU 6
    node = Node(root, kubelet_socket="", hpc_job_mapping_dir=str(mapping))
    try:
        write_driver_information(node)
        write_job(root, 20821, 4824887, JOB_LIST.format(a=4, b=5))
        for _ in range(100):
            snapshot = node.sample()
            if source_state(snapshot).get("slurm_cgroup") == (1.0, "ok"):
                break
        info = labelled(snapshot, "suanli_gpu_job_info")
        on_6 = [(x["job_id"], x["user"]) for x in info if x["gpu"] == "6"]
        assert on_6 == [("4824887", "20821")]  # one series, with the uid the cgroup gives
    finally:
        node.close()


def test_slurm_on_cgroup_v2_says_the_prolog_mapping_is_needed(root: Path) -> None:
    cgroup = root / "sys/fs/cgroup"
    (cgroup / "system.slice/slurmstepd.scope/job_1320003/step_0").mkdir(parents=True)
    (cgroup / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    node = Node(root, kubelet_socket="")
    try:
        snapshot = node.sample()
        for _ in range(100):
            if "slurm_cgroup" in source_state(snapshot):
                break
            snapshot = node.sample()
        assert source_state(snapshot) == {"slurm_cgroup": (0.0, "cgroup_v2")}
    finally:
        node.close()


def test_device_lists_name_gpus_by_minor_and_skip_the_control_devices() -> None:
    assert device_minors(JOB_LIST.format(a=0, b=3)) == {0, 3}
    assert device_minors("a *:* rwm\n") is None
    assert device_minors("c 195:* rwm\n") is None  # every NVIDIA device
    assert device_minors("c 1:3 rwm\nc 195:255 rwm\n") == set()  # nvidiactl only: no GPU


def test_minors_come_from_the_drivers_information_files(tmp_path: Path) -> None:
    folder = tmp_path / "driver/nvidia/gpus/0000:18:00.0"
    folder.mkdir(parents=True)
    uuid = "GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1"  # the H100 x8 capture's GPU 0
    (folder / "information").write_text(INFORMATION.format(uuid=uuid, bus="0000:18:00.0", minor=0))
    assert gpu_minors(str(tmp_path)) == {0: uuid}
    assert gpu_minors(str(tmp_path / "absent")) == {}
