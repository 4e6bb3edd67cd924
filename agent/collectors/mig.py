"""The MIG view: each MIG instance of a GPU, with its own series under `suanli_mig_*` (labels
`gpu_instance` and `compute_instance`): memory, and GPM activity per instance. Device-level
values (power, temperature) stay on the parent GPU only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from agent.collectors.activity import activity_samples, ratio_specs
from agent.collectors.base import Context, ViewKind
from agent.collectors.gpu import GpuOptions
from agent.collectors.gpu_presence import gpu_ids
from agent.hw import GpuSnapshot, MigReading
from agent.metrics import MetricSpec, Sample

if TYPE_CHECKING:
    from agent.hw.nvml_backend import NvmlBackend

MIG = ("gpu", "uuid", "gpu_instance", "compute_instance")
MIG_RATIOS = ratio_specs("mig", MIG)
MIG_PIPE = MetricSpec(
    "suanli_mig_pipe_active_ratio",
    "gauge",
    "Fraction of time each SM pipe was busy (GPM).",
    (*MIG, "pipe"),
)
MIG_INFO = MetricSpec(
    "suanli_mig_info",
    "gauge",
    "A MIG instance of a GPU (value 1); join on uuid.",
    (*MIG, "profile", "mig_uuid"),
)
MIG_MEMORY_USED = MetricSpec(
    "suanli_mig_memory_used_bytes", "gauge", "Memory in use in the MIG instance.", MIG
)
MIG_MEMORY_TOTAL = MetricSpec(
    "suanli_mig_memory_total_bytes", "gauge", "Memory of the MIG instance.", MIG
)

SPECS = (MIG_INFO, MIG_MEMORY_USED, MIG_MEMORY_TOTAL, *MIG_RATIOS.values(), MIG_PIPE)


class MigInstances:
    name = "mig"

    def specs(self) -> Sequence[MetricSpec]:
        return SPECS

    def samples(self, snapshot: GpuSnapshot) -> list[Sample]:
        samples: list[Sample] = []
        for reading in snapshot.readings:
            if reading.up:
                ids = gpu_ids(reading.device)
                for mig in reading.mig:
                    samples += _instance_samples(mig, ids)
        return samples

    def close(self) -> None:
        pass


def _instance_samples(mig: MigReading, ids: tuple[str, str]) -> list[Sample]:
    instance = mig.instance
    mig_ids = (*ids, str(instance.gpu_instance), str(instance.compute_instance))
    samples = [Sample(MIG_INFO, (*mig_ids, instance.profile, instance.uuid), 1.0)]
    if mig.memory_used_bytes is not None:
        samples.append(Sample(MIG_MEMORY_USED, mig_ids, mig.memory_used_bytes))
    if mig.memory_total_bytes is not None:
        samples.append(Sample(MIG_MEMORY_TOTAL, mig_ids, mig.memory_total_bytes))
    return samples + activity_samples(mig.activity, MIG_RATIOS, MIG_PIPE, mig_ids)


def build(options: GpuOptions, context: Context, backend: NvmlBackend) -> MigInstances:
    return MigInstances()


VIEW = ViewKind("mig", "gpu", build, "MIG instances (collector `mig`)", SPECS)
