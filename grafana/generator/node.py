"""6. Node and GPU detail: every metric of one node, per GPU, with MIG instances and jobs."""

from __future__ import annotations

from grafana.generator.board import dashboard
from grafana.generator.node_agent import agent_panels
from grafana.generator.node_allocations import allocation_panels
from grafana.generator.node_gpu import g, gpu_panels, per_gpu
from grafana.generator.node_gpu_health import gpu_health_panels
from grafana.generator.node_gpu_links import gpu_link_panels
from grafana.generator.node_infiniband import infiniband_panels
from grafana.generator.node_mig import mig_panels
from grafana.generator.node_other import uncharted_panels
from grafana.generator.panels import (
    NODE_UID,
    Json,
    Query,
    stat,
    timeseries,
)
from grafana.generator.promql import NODE, sel
from grafana.generator.tables import table

TITLE = "Suanli / Node and GPU detail"
RATE = "[$__rate_interval]"
LOGICAL = 'kind="logical"'
BUSY = 'mode!="idle"'


def n(metric: str, extra: str = "") -> str:
    """`metric` on the selected node."""
    return sel(metric, NODE, extra)


def gpu_stats() -> list[Json]:
    """The node's GPUs: known, answering, healthy; and whether NVML works."""
    return [
        stat(
            "GPUs",
            "GPUs the agent knows on this node, lost ones included.",
            "none",
            Query(f"count({g('suanli_gpu_up')})"),
        ),
        stat(
            "GPUs answering",
            "GPUs whose last NVML read succeeded.",
            "none",
            Query(f"sum({g('suanli_gpu_up')})"),
        ),
        stat(
            "GPUs healthy",
            "GPUs passing every health check.",
            "none",
            Query(f"sum({g('suanli_gpu_healthy')})"),
        ),
        stat(
            "NVML",
            "1 when the agent has a working NVML (driver loaded), 0 otherwise.",
            "none",
            Query(f"min({n('suanli_nvml_up')})"),
            bad_below=1,
        ),
    ]


def host_stats() -> list[Json]:
    """The node's power, CPUs, memory and load."""
    memory = f"sum({n('suanli_memory_available_bytes')}) / sum({n('suanli_memory_total_bytes')})"
    return [
        stat(
            "Node power",
            "The platform meter where the node has one, else GPUs + CPU "
            "packages + DRAM (the instance-level rollup).",
            "watt",
            Query(f"sum({n('instance:suanli_node_power_watts:sum')})"),
        ),
        stat(
            "Logical CPUs",
            "CPUs of the host, logical (physical cores in the host panels).",
            "none",
            Query(f"sum({n('suanli_cpus', LOGICAL)})"),
        ),
        stat(
            "Memory available",
            "Memory available to start new work without swapping, over the installed memory.",
            "percentunit",
            Query(memory),
            decimals=1,
        ),
        stat(
            "Load (1 min)",
            "One-minute load average of the host.",
            "short",
            Query(f"sum({n('suanli_load1')})"),
            decimals=2,
        ),
    ]


def info_tables() -> list[Json]:
    agent = {"Value #A": "build", "Value #B": "nvml"}
    return [
        table(
            "GPUs",
            "Model, serial, bus id, driver and VBIOS of each GPU (for RMAs).",
            "none",
            Query(g("suanli_gpu_info")),
            w=24,
            h=7,
            hide=("Value",),
        ),
        table(
            "Agent and driver",
            "The agent's version, Python and NVML binding; the driver, NVML and CUDA versions.",
            "none",
            Query(n("suanli_agent_build_info")),
            Query(n("suanli_nvml_info")),
            rename=agent,
            hide=tuple(agent),
            h=5,
        ),
        table(
            "Configured topology",
            "The topology in the agent's configuration "
            "(exported_cluster, exported_hall, exported_rack) beside the inventory's target "
            "labels: they should agree.",
            "none",
            Query(n("suanli_node_info")),
            hide=("Value",),
            h=5,
        ),
    ]


def host_panels() -> list[Json]:
    """The host's CPUs, memory and load."""
    logical = f"sum by (instance) ({n('suanli_cpus', LOGICAL)})"
    busy = (
        f"sum by (instance, mode) (rate({n('suanli_cpu_seconds_total', BUSY)}{RATE})) "
        f"/ on (instance) group_left () {logical}"
    )
    return [
        timeseries(
            "CPU busy by mode",
            "Share of the host's logical CPUs busy in each mode.",
            "percentunit",
            Query(busy, legend="{{mode}}"),
            w=8,
            stack=True,
        ),
        timeseries(
            "Host memory",
            "Installed memory and memory available.",
            "bytes",
            Query(n("suanli_memory_total_bytes"), legend="total"),
            Query(n("suanli_memory_available_bytes"), legend="available"),
            w=8,
        ),
        timeseries(
            "Load and CPUs",
            "One-minute load average beside the CPU counts.",
            "short",
            Query(n("suanli_load1"), legend="load1"),
            Query(n("suanli_cpus"), legend="{{kind}} CPUs"),
            w=8,
        ),
    ]


def host_power_panels() -> list[Json]:
    """Node power by source, CPU power from RAPL."""
    return [
        timeseries(
            "Node power by source",
            "GPUs (sum of boards), CPU packages and DRAM "
            "(RAPL), and the platform meter where there is one.",
            "watt",
            Query(n("suanli_node_power_watts"), legend="{{source}}"),
            w=8,
        ),
        timeseries(
            "CPU power (RAPL)",
            "CPU package and DRAM power per socket: the agent's "
            "mean over its sampling interval, and the rate of its energy counter.",
            "watt",
            Query(n("suanli_cpu_power_watts"), legend="{{domain}} {{socket}}"),
            Query(
                f"rate({n('suanli_cpu_energy_joules_total')}{RATE})",
                legend="{{domain}} {{socket}} (counter)",
            ),
            w=8,
        ),
    ]


def job_panels() -> list[Json]:
    """Which job holds each GPU, and its processes, memory and power."""
    job_power = f"rate({n('suanli_job_gpu_energy_joules_total')}{RATE})"
    return [
        table(
            "Jobs on this node",
            "Which job holds each GPU, with its scheduler's names.",
            "none",
            Query(g("suanli_gpu_job_info")),
            w=24,
            hide=("Value",),
        ),
        timeseries(
            "Processes", "Compute processes per GPU.", "none", per_gpu("suanli_gpu_processes"), w=8
        ),
        timeseries(
            "Memory per job",
            "GPU memory held by each job's processes.",
            "bytes",
            per_gpu("suanli_job_gpu_memory_used_bytes", " {{scheduler}} {{job_id}}"),
            w=8,
        ),
        timeseries(
            "GPU power per job",
            "GPU energy of each job per second on this node (job none: GPUs without a job).",
            "watt",
            Query(job_power, legend="{{scheduler}} {{job_id}}"),
            w=8,
        ),
    ]


def job_work_panels() -> list[Json]:
    """What jobs do with their GPUs: GPU-seconds, FLOP/s, process memory, allocations."""
    return [
        timeseries(
            "GPU-seconds per job",
            "GPU-seconds per second of each job: GPUs held (allocated), busy and held while idle "
            "(a MIG instance counts its share of the GPU; job none: what no job held).",
            "none",
            Query(
                f"rate({n('suanli_job_gpu_seconds_total')}{RATE})",
                legend="{{scheduler}} {{job_id}} {{state}}",
            ),
            w=12,
        ),
        timeseries(
            "Delivered FLOP/s per job",
            "FLOP per second delivered on each job's share of its GPUs, per precision.",
            "flops",
            Query(
                f"rate({n('suanli_job_delivered_flops_total')}{RATE})",
                legend="{{scheduler}} {{job_id}} {{precision}}",
            ),
            w=12,
        ),
        table(
            "Process memory",
            "GPU memory of each process (only with collectors.jobs.per_process, capped per GPU).",
            "bytes",
            Query(g("suanli_gpu_process_memory_used_bytes")),
            w=24,
            rename={"Value": "memory"},
        ),
        *allocation_panels(),
    ]


def build() -> Json:
    gpu = [*info_tables(), *gpu_panels(), *gpu_link_panels(), *gpu_health_panels()]
    panels = [
        *gpu_stats(),
        *host_stats(),
        *gpu,
        *uncharted_panels(gpu),
        *mig_panels(),
        *job_panels(),
        *job_work_panels(),
        *host_panels(),
        *host_power_panels(),
        *infiniband_panels(),
        *agent_panels(),
    ]
    description = (
        "Every metric of one node, per GPU: activity, memory, power, heat, clocks, PCIe and "
        "NVLink, health, MIG instances, jobs, the host and the agent. Raw series of one node."
    )
    return dashboard(NODE_UID, TITLE, description, panels, single_node=True)
