"""6c. Where the node's jobs come from: the kubelet and Slurm's device lists (GPUs a job holds
with no process on them), and the GPUs the kubelet can give to pods (docs/jobs.md)."""

from __future__ import annotations

from grafana.generator.node_gpu import per_gpu
from grafana.generator.panels import Json, Query, timeseries
from grafana.generator.promql import NODE, sel
from grafana.generator.tables import table


def allocation_panels() -> list[Json]:
    return [
        table(
            "Allocation sources",
            "1: the kubelet's PodResources API or Slurm's device lists were read, so a GPU a job "
            "holds is its job's with or without a process; 0: processes alone, reason says why.",
            "none",
            Query(sel("suanli_job_allocation_source_up", NODE)),
            w=12,
            rename={"Value": "up"},
        ),
        timeseries(
            "Kubelet can allocate",
            "1 when the kubelet can give the GPU to pods; 0: the device plugin no longer offers "
            "it (unhealthy), so the node has less GPU capacity than GPUs.",
            "none",
            per_gpu("suanli_gpu_kubelet_allocatable"),
            w=12,
            max_=1,
        ),
    ]
