"""dcgm-exporter's names as data: each DCGM series and the native family it is read from.

Opt-in (`exposition.dcgm_compat`, `--dcgm-compat`); docs/dcgm-compat.md explains every row and
every deliberate difference. A row names dcgm-exporter's metric, its type as dcgm-exporter's
counters file declares it, its help text, the native families it is computed from (summed, each
with a label selection and a coefficient), and the factor from the native base unit to
dcgm-exporter's unit. Nothing here reads hardware: agent/dcgm_compat.py derives the series from
the samples of a snapshot, once per snapshot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from agent.metrics import MetricKind, MetricSpec

MIB = 1.0 / 2**20  # bytes -> MiB
MHZ = 1e-6  # hertz -> MHz
PERCENT = 100.0  # ratio -> percent
MILLIJOULES = 1000.0  # joules -> mJ
KB = 1.0 / 1024  # bytes/s -> KB/s as NVML reports PCIe throughput (KB = 1024 bytes)

# The labels dcgm-exporter puts on a GPU's series (pod labels: empty when no pod is attributed).
GPU_LABELS = (
    "gpu",
    "UUID",
    "pci_bus_id",
    "device",
    "modelName",
    "Hostname",
    "DCGM_FI_DRIVER_VERSION",
    "container",
    "namespace",
    "pod",
)
MIG_LABELS = ("GPU_I_ID", "GPU_I_PROFILE")  # empty on a GPU's own series

_DCGM_NAME = re.compile(r"^DCGM_FI_[A-Z0-9_]+$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

Reduce = Literal["sum", "max_xid"]


@dataclass(frozen=True)
class DcgmSpec(MetricSpec):
    """A metric family under dcgm-exporter's naming, not the agent's (no prefix, upper case)."""

    def __post_init__(self) -> None:
        if not _DCGM_NAME.match(self.name):
            raise ValueError(f"metric {self.name}: a dcgm-exporter name is DCGM_FI_...")
        if not all(_LABEL.match(label) for label in self.labels) or not self.help.strip():
            raise ValueError(f"metric {self.name}: bad label names or empty help")


@dataclass(frozen=True)
class Source:
    """A native family, the label values a sample must have, and its sign or weight in the sum.

    An `optional` source that has no sample counts as 0; a required one makes the series absent.
    """

    family: str
    match: tuple[tuple[str, str], ...] = ()
    coefficient: float = 1.0
    optional: bool = False


@dataclass(frozen=True)
class DcgmMetric:
    """One dcgm-exporter series: sum(coefficient x native value) x scale, per GPU.

    `mig`: the sources on a MIG instance; a GPU with MIG instances then has one series per GPU
    instance (`GPU_I_ID`, `GPU_I_PROFILE`) and none of its own, so sums never count twice.
    `reduce="max_xid"`: the highest XID code counted on the GPU, 0 when none.
    """

    spec: DcgmSpec
    sources: tuple[Source, ...]
    scale: float = 1.0
    mig: tuple[Source, ...] = ()
    reduce: Reduce = "sum"


def _metric(
    name: str,
    kind: MetricKind,
    help: str,
    sources: tuple[Source, ...],
    scale: float = 1.0,
    mig: tuple[Source, ...] = (),
    reduce: Reduce = "sum",
) -> DcgmMetric:
    labels = (*GPU_LABELS, *MIG_LABELS) if mig else GPU_LABELS
    return DcgmMetric(DcgmSpec(name, kind, help, labels), sources, scale, mig, reduce)


def _one(family: str, **match: str) -> tuple[Source, ...]:
    return (Source(family, tuple(sorted(match.items()))),)


def _mig_ratio(name: str) -> tuple[Source, ...]:
    return _one(f"suanli_mig_{name}_ratio")


TABLE: tuple[DcgmMetric, ...] = (
    _metric(
        "DCGM_FI_DEV_SM_CLOCK",
        "gauge",
        "SM clock frequency (in MHz).",
        _one("suanli_gpu_clock_hertz", clock="sm"),
        MHZ,
    ),
    _metric(
        "DCGM_FI_DEV_MEM_CLOCK",
        "gauge",
        "Memory clock frequency (in MHz).",
        _one("suanli_gpu_clock_hertz", clock="memory"),
        MHZ,
    ),
    _metric(
        "DCGM_FI_DEV_MEMORY_TEMP",
        "gauge",
        "Memory temperature (in C).",
        _one("suanli_gpu_temperature_celsius", sensor="memory"),
    ),
    _metric(
        "DCGM_FI_DEV_GPU_TEMP",
        "gauge",
        "GPU temperature (in C).",
        _one("suanli_gpu_temperature_celsius", sensor="gpu"),
    ),
    _metric(
        "DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", _one("suanli_gpu_power_watts")
    ),
    _metric(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "counter",
        "Total energy consumption since the driver was loaded (in mJ).",
        _one("suanli_gpu_energy_joules_total"),
        MILLIJOULES,
    ),
    _metric(
        "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
        "counter",
        "PCIe TX throughput (in KB/s) via NVML; declared a counter as dcgm-exporter does.",
        _one("suanli_gpu_pcie_throughput_bytes_per_second", direction="tx"),
        KB,
    ),
    _metric(
        "DCGM_FI_DEV_PCIE_RX_THROUGHPUT",
        "counter",
        "PCIe RX throughput (in KB/s) via NVML; declared a counter as dcgm-exporter does.",
        _one("suanli_gpu_pcie_throughput_bytes_per_second", direction="rx"),
        KB,
    ),
    _metric(
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
        "counter",
        "Total number of PCIe retries.",
        _one("suanli_gpu_pcie_replays_total"),
    ),
    _metric(
        "DCGM_FI_DEV_GPU_UTIL",
        "gauge",
        "GPU utilization (in %).",
        _one("suanli_gpu_utilization_ratio"),
        PERCENT,
    ),
    _metric(
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "gauge",
        "Memory utilization (in %).",
        _one("suanli_gpu_memory_controller_utilization_ratio"),
        PERCENT,
    ),
    _metric(
        "DCGM_FI_DEV_ENC_UTIL",
        "gauge",
        "Encoder utilization (in %).",
        _one("suanli_gpu_encoder_utilization_ratio"),
        PERCENT,
    ),
    _metric(
        "DCGM_FI_DEV_DEC_UTIL",
        "gauge",
        "Decoder utilization (in %).",
        _one("suanli_gpu_decoder_utilization_ratio"),
        PERCENT,
    ),
    _metric(
        "DCGM_FI_DEV_XID_ERRORS",
        "gauge",
        "Highest XID code counted on the GPU since the agent started, 0 when none "
        "(dcgm-exporter: the last XID); counts per code in suanli_gpu_xid_errors_total.",
        _one("suanli_gpu_xid_errors_total"),
        reduce="max_xid",
    ),
    _metric(
        "DCGM_FI_DEV_FB_FREE",
        "gauge",
        "Framebuffer memory free (in MiB).",
        (
            Source("suanli_gpu_memory_total_bytes"),
            Source("suanli_gpu_memory_used_bytes", coefficient=-1.0),
            Source("suanli_gpu_memory_reserved_bytes", coefficient=-1.0, optional=True),
        ),
        MIB,
        mig=(
            Source("suanli_mig_memory_total_bytes"),
            Source("suanli_mig_memory_used_bytes", coefficient=-1.0),
        ),
    ),
    _metric(
        "DCGM_FI_DEV_FB_USED",
        "gauge",
        "Framebuffer memory used (in MiB).",
        _one("suanli_gpu_memory_used_bytes"),
        MIB,
        mig=_one("suanli_mig_memory_used_bytes"),
    ),
    _metric(
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "counter",
        "Number of remapped rows for uncorrectable errors.",
        _one("suanli_gpu_remapped_rows", kind="uncorrectable"),
    ),
    _metric(
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        "counter",
        "Number of remapped rows for correctable errors.",
        _one("suanli_gpu_remapped_rows", kind="correctable"),
    ),
    _metric(
        "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        "gauge",
        "Whether remapping of rows has failed.",
        _one("suanli_gpu_row_remap_state", state="failed"),
    ),
    _metric(
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "gauge",
        "Ratio of time the graphics engine is active.",
        _one("suanli_gpu_graphics_engine_active_ratio"),
        mig=_mig_ratio("graphics_engine_active"),
    ),
    _metric(
        "DCGM_FI_PROF_SM_ACTIVE",
        "gauge",
        "The ratio of cycles an SM has at least 1 warp assigned.",
        _one("suanli_gpu_sm_active_ratio"),
        mig=_mig_ratio("sm_active"),
    ),
    _metric(
        "DCGM_FI_PROF_SM_OCCUPANCY",
        "gauge",
        "The ratio of number of warps resident on an SM.",
        _one("suanli_gpu_sm_occupancy_ratio"),
        mig=_mig_ratio("sm_occupancy"),
    ),
    _metric(
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "gauge",
        "Ratio of cycles the tensor (HMMA) pipe is active.",
        _one("suanli_gpu_tensor_active_ratio"),
        mig=_mig_ratio("tensor_active"),
    ),
    _metric(
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "gauge",
        "Ratio of cycles the device memory interface is active sending or receiving data.",
        _one("suanli_gpu_dram_active_ratio"),
        mig=_mig_ratio("dram_active"),
    ),
)

SPECS: tuple[DcgmSpec, ...] = tuple(metric.spec for metric in TABLE)
