"""Hardware access: what the backends return, in base units, with absent values as None."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from agent.hw.pci import pci_address


@dataclass(frozen=True)
class GpuDevice:
    """Static facts of one GPU, read once when the device is first seen."""

    index: int
    uuid: str
    model: str
    pci_bus_id: str
    serial: str | None = None
    vbios_version: str | None = None
    architecture: str | None = None
    compute_mode: str | None = None
    mig_mode: str = "n/a"
    power_limit_default_watts: float | None = None
    power_limit_min_watts: float | None = None
    power_limit_max_watts: float | None = None
    temperature_thresholds_celsius: Mapping[str, float] = field(default_factory=dict)
    max_clocks_hertz: Mapping[str, float] = field(default_factory=dict)
    pcie_max_generation: int | None = None
    pcie_max_width: int | None = None
    nvlink_count: int = 0

    @cached_property
    def xid_key(self) -> Hashable:
        """How this GPU's XIDs are filed: its PCI address, which the kernel log names too and
        which stays known after the GPU stops answering; its UUID when NVML gave no bus id."""
        return pci_address(self.pci_bus_id) or self.uuid


@dataclass
class GpuReading:
    """One sampling cycle's dynamic values for one GPU. None or a missing key means absent."""

    device: GpuDevice
    up: bool = True
    utilization_ratio: float | None = None
    memory_controller_utilization_ratio: float | None = None
    memory_used_bytes: float | None = None
    memory_total_bytes: float | None = None
    memory_reserved_bytes: float | None = None
    values: dict[str, float] = field(default_factory=dict)  # `nvml_simple.SIMPLE_READS`, by key
    power_watts: float | None = None
    power_limit_enforced_watts: float | None = None
    energy_joules: float | None = None
    temperature_celsius: dict[str, float] = field(default_factory=dict)
    fan_speed_ratio: float | None = None
    clocks_hertz: dict[str, float] = field(default_factory=dict)
    performance_state: int | None = None
    clock_event_reasons: dict[str, bool] = field(default_factory=dict)
    throttle_seconds: dict[str, float] = field(default_factory=dict)
    pcie_throughput_bytes_per_second: dict[str, float] = field(default_factory=dict)
    pcie_bytes: dict[str, float] = field(default_factory=dict)  # cumulative, where NVML counts
    pcie_link_generation: int | None = None
    pcie_link_width: int | None = None
    pcie_replays: float | None = None
    ecc_errors: dict[str, float] = field(default_factory=dict)
    retired_pages: dict[str, float] = field(default_factory=dict)
    remapped_rows: dict[str, float] = field(default_factory=dict)
    row_remap_state: dict[str, float] = field(default_factory=dict)
    recovery_action: int | None = None
    nvlink_up: dict[int, bool] = field(default_factory=dict)
    nvlink_bytes: dict[str, float] = field(default_factory=dict)
    nvlink_errors: dict[str, float] = field(default_factory=dict)
    encoder_utilization_ratio: float | None = None
    decoder_utilization_ratio: float | None = None
    ecc_volatile_uncorrected: float | None = None  # since the driver loaded; for health only
    activity: dict[str, float] = field(default_factory=dict)  # GPM ratios, Hopper and newer
    activity_seconds: float | None = None  # the time `activity` is the mean over
    gpm_supported: bool | None = None  # None: GPM not asked (collectors.gpu.gpm off)
    mig: list[MigReading] = field(default_factory=list)
    processes: list[GpuProcess] | None = None  # None: not read (jobs off, or NVML refused)
    down_reason: str | None = None  # when not up: lost, hung, error, missing or nvml_down
    fabric_state: int | None = None  # NVSwitch fabric: NVML_GPU_FABRIC_STATE_*; None: no fabric
    fabric_status: int | None = None  # NVML return code of the fabric registration
    fabric_clique: int | None = None


@dataclass(frozen=True)
class GpuProcess:
    """A compute process on a GPU: its memory (None when NVML cannot tell) and SM share."""

    pid: int
    memory_used_bytes: float | None = None
    sm_utilization_ratio: float | None = None  # from per-process utilisation samples
    gpu_instance: int | None = None  # the MIG GPU instance it runs in; None: the whole GPU


@dataclass(frozen=True)
class MigInstance:
    """A MIG compute instance: its place in the parent GPU and its static facts."""

    gpu_instance: int
    compute_instance: int
    uuid: str
    profile: str
    multiprocessors: int | None = None  # SMs of the instance (nvmlDeviceGetAttributes)


@dataclass
class MigReading:
    instance: MigInstance
    memory_used_bytes: float | None = None
    memory_total_bytes: float | None = None
    activity: dict[str, float] = field(default_factory=dict)
    activity_seconds: float | None = None


@dataclass(frozen=True)
class XidRecord:
    """XIDs counted per GPU (keyed by `xid_key(device)`): counts by code, and the wall time each
    code was last seen."""

    counts: Mapping[Hashable, Mapping[int, int]] = field(default_factory=dict)
    last_seen: Mapping[tuple[Hashable, int], float] = field(default_factory=dict)


@dataclass(frozen=True)
class NvmlStatus:
    """Whether NVML is usable, and the system-level versions it reports."""

    up: bool
    error: str | None = None
    driver_version: str | None = None
    nvml_version: str | None = None
    cuda_driver_version: str | None = None


@dataclass
class GpuSnapshot:
    """What the NVML backend read in one cycle: library status, per-GPU readings, error counts."""

    status: NvmlStatus
    readings: list[GpuReading] = field(default_factory=list)
    errors: Mapping[tuple[str, str], int] = field(default_factory=dict)
    disabled: Mapping[str, str] = field(default_factory=dict)  # function -> why (nvml_probe)
    xid: XidRecord = field(default_factory=XidRecord)
    inventory: GpuInventory | None = None


@dataclass(frozen=True)
class GpuInventory:
    """How many GPUs the node should have and has: expected (PCI bus, configuration, or seen),
    present (answering this cycle), lost (expected but not answering)."""

    expected: int
    present: int

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.present)
