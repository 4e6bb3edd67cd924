"""GPU model facts for the fake NVML, read from real captures, and the NVML surface it offers.

Every value comes from `/work/shared/reference/nvidia-smi*/` (file named in the comment) unless a
comment says otherwise. Absolute temperature thresholds are printed only by some drivers; where a
capture shows only the relative "T.Limit" rows they are derived as
`gpu_max = current temp + T.Limit margin`, `slowdown/shutdown = gpu_max - <its T.Limit row>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from suanli_sim.binding import pynvml
from suanli_sim.fake_functions import FUNCTIONS, KNOWN_SYMBOLS, MEMORY_V2_SYMBOL, SYMBOLS

__all__ = [
    "FUNCTIONS",
    "KNOWN_SYMBOLS",
    "MEMORY_V2_SYMBOL",
    "MIB",
    "MODELS",
    "RECOVERY_ACTIONS",
    "SYMBOLS",
    "Clocks",
    "GpuModel",
    "Thresholds",
    "model_names",
]

MIB = 1024 * 1024

# HGX 8-GPU board bus layout of H100-SXM5-80GB-x8__565.57.01__gls.txt, used for every SXM model
HGX_BUS_IDS = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)
# PCIe card layout of RTX-4090-x8__550.127.05__gls.txt, used for every PCIe model
PCIE_BUS_IDS = (0x01, 0x25, 0x41, 0x61, 0x81, 0xA1, 0xC1, 0xE1)


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
    power_w: tuple[int, int, int]  # default, min, max limit
    max_clocks: Clocks
    idle_clocks: Clocks
    busy_clocks: Clocks
    pstates: tuple[int, int]  # idle, busy
    pcie: tuple[int, int, int]  # max generation, max width, generation when idle
    nvlink_links: int
    thresholds: Thresholds
    idle_power_w: float
    temps_c: tuple[int, int, int, int]  # gpu idle, gpu at load_ref_w, memory idle, memory load
    load_ref_w: float
    bus_ids: tuple[int, ...] = HGX_BUS_IDS
    fan: bool = False
    mig_capable: bool = True
    ecc: bool = True
    memory_temp: bool = True
    serial: bool = True
    retired_pages: bool = False  # "Retired Pages: N/A" in every capture of these models
    mig_idle_used_mib: int = 59  # H100-SXM5-80GB-MIG idle capture


_HOPPER = pynvml.NVML_DEVICE_ARCH_HOPPER
_HOPPER_MAX = Clocks(1980, 1980, 2619, 1545)  # "Max Clocks", H100 captures
_HOPPER_IDLE = Clocks(345, 345, 2619, 765)  # idle P0 clocks, H100/H800/H200 captures
_HOPPER_T = Thresholds(95, 89, 87, 95)  # derived from T.Limit (see module doc); memory: H800's

MODELS: dict[str, GpuModel] = {
    # H100-SXM5-80GB-x8__565.57.01__gls.txt (idle) and H100-SXM5-80GB__590.48.01 idle/load
    "H100-SXM5-80GB": GpuModel(
        "H100-SXM5-80GB",
        "NVIDIA H100 80GB HBM3",
        _HOPPER,
        (9, 0),
        0x233010DE,
        0x16C110DE,
        "96.00.74.00.01",
        81559,
        454,
        (700, 200, 700),
        _HOPPER_MAX,
        _HOPPER_IDLE,
        _HOPPER_MAX,
        (0, 0),
        (5, 16, 5),
        18,
        _HOPPER_T,
        85.0,
        (30, 64, 37, 58),
        632.0,
    ),
    # H800-SXM5-80GB__525.105.17__llmaction.txt: absolute thresholds printed; ECC disabled there
    # (an operator setting; a scenario can set `ecc: true`). Load temps: not captured, H100's.
    "H800-SXM5-80GB": GpuModel(
        "H800-SXM5-80GB",
        "NVIDIA H800",
        _HOPPER,
        (9, 0),
        0x232410DE,
        0x17A610DE,
        "96.00.51.00.0E",
        81559,
        516,
        (700, 200, 700),
        _HOPPER_MAX,
        _HOPPER_IDLE,
        _HOPPER_MAX,
        (0, 0),
        (5, 16, 5),
        8,
        Thresholds(92, 89, 87, 95),
        74.7,
        (35, 64, 44, 58),
        632.0,
        ecc=False,
    ),
    # H20: NOT CAPTURED. Name/PCI id from NVIDIA mig-parted's device filter (0x232910DE "H20");
    # 96 GB HBM3 and 400 W from gpu-models.md Table B [S12]; FB total/reserved from the 96 GB
    # GH200 capture; clocks, thresholds, idle/load behaviour and vbios assumed equal to H100.
    "H20-96GB": GpuModel(
        "H20-96GB",
        "NVIDIA H20",
        _HOPPER,
        (9, 0),
        0x232910DE,
        0x0,
        "96.00.00.00.00",
        97871,
        1103,
        (400, 200, 400),
        _HOPPER_MAX,
        _HOPPER_IDLE,
        _HOPPER_MAX,
        (0, 0),
        (5, 16, 5),
        18,
        _HOPPER_T,
        70.0,
        (30, 60, 37, 55),
        380.0,
    ),
    # H200-SXM-141GB__590.48.01__nvgpuexp-{idle,load}.txt
    "H200-SXM-141GB": GpuModel(
        "H200-SXM-141GB",
        "NVIDIA H200",
        _HOPPER,
        (9, 0),
        0x233510DE,
        0x18BE10DE,
        "96.00.A5.00.03",
        143771,
        614,
        (700, 200, 700),
        Clocks(1980, 1980, 3201, 1545),
        Clocks(345, 345, 3201, 765),
        Clocks(1980, 1980, 3201, 1545),
        (0, 0),
        (5, 16, 5),
        18,
        _HOPPER_T,
        77.7,
        (28, 52, 32, 41),
        626.0,
    ),
    # A100-SXM4-80GB-x4__555.42.02__gls.txt (absolute thresholds, idle) and -MIG 535 xml.
    # Load temps: not captured (assumed). NVLink 12 links: datasheet [S14], not captured.
    "A100-SXM4-80GB": GpuModel(
        "A100-SXM4-80GB",
        "NVIDIA A100-SXM4-80GB",
        pynvml.NVML_DEVICE_ARCH_AMPERE,
        (8, 0),
        0x20B210DE,
        0x147F10DE,
        "92.00.9E.00.02",
        81920,
        763,
        (500, 100, 500),
        Clocks(1410, 1410, 1593, 1290),
        Clocks(210, 210, 1593, 585),
        Clocks(1410, 1410, 1593, 1290),
        (0, 0),
        (4, 16, 4),
        12,
        Thresholds(92, 89, 85, 95),
        59.8,
        (25, 60, 43, 60),
        400.0,
        mig_idle_used_mib=50,
    ),
    # L40S__550.127.05__gls.txt (idle: P8, Gen1) and L40S__595.80 load (P0, 2520 MHz, 183 W 64 C)
    "L40S": GpuModel(
        "L40S",
        "NVIDIA L40S",
        pynvml.NVML_DEVICE_ARCH_ADA,
        (8, 9),
        0x26B910DE,
        0x185110DE,
        "95.02.66.00.02",
        46068,
        479,
        (350, 100, 350),
        Clocks(2520, 2520, 9001, 1965),
        Clocks(210, 210, 405, 1185),
        Clocks(2520, 2520, 9001, 1965),
        (8, 0),
        (4, 16, 1),
        0,
        Thresholds(92, 89, 87, None),
        33.4,
        (30, 64, 0, 0),
        183.0,
        bus_ids=PCIE_BUS_IDS,
        mig_capable=False,
        memory_temp=False,
    ),
    # RTX-4090-x8__550.127.05__gls.txt (idle P8 Gen1, fan 0 %, serial N/A, ECC disabled).
    # Busy P2 and clocks from RTX-4080-SUPER load capture (same Ada GeForce); load temp assumed.
    "RTX-4090": GpuModel(
        "RTX-4090",
        "NVIDIA GeForce RTX 4090",
        pynvml.NVML_DEVICE_ARCH_ADA,
        (8, 9),
        0x268410DE,
        0xF29710B0,
        "95.02.3C.00.EB",
        24564,
        354,
        (450, 150, 450),
        Clocks(3105, 3105, 10501, 2415),
        Clocks(210, 210, 405, 1185),
        Clocks(2805, 2805, 10251, 2145),
        (8, 2),
        (4, 16, 1),
        0,
        Thresholds(91, 86, 84, None),
        20.0,
        (28, 66, 0, 0),
        400.0,
        bus_ids=PCIE_BUS_IDS,
        fan=True,
        mig_capable=False,
        ecc=False,
        memory_temp=False,
        serial=False,
    ),
}


RECOVERY_ACTIONS = {
    "none": pynvml.NVML_GPU_RECOVERY_ACTION_NONE,
    "gpu_reset": pynvml.NVML_GPU_RECOVERY_ACTION_GPU_RESET,
    "node_reboot": pynvml.NVML_GPU_RECOVERY_ACTION_NODE_REBOOT,
    "drain_p2p": pynvml.NVML_GPU_RECOVERY_ACTION_DRAIN_P2P,
    "drain_and_reset": pynvml.NVML_GPU_RECOVERY_ACTION_DRAIN_AND_RESET,
}


def model_names() -> list[str]:
    return sorted(MODELS)
