"""6. Node and GPU detail, the GPUs' links: PCIe throughput, width and replays, NVLink links,
throughput and errors."""

from __future__ import annotations

from grafana.generator.node_gpu import PER_GPU, g, per_gpu, rate
from grafana.generator.panels import Json, Query, timeseries


def pcie_panels() -> list[Json]:
    """PCIe throughput, link generation and width, replays."""
    return [
        timeseries(
            "PCIe throughput",
            "PCIe traffic over NVML's last 20 ms window.",
            "Bps",
            per_gpu("suanli_gpu_pcie_throughput_bytes_per_second", " {{direction}}"),
            w=8,
        ),
        timeseries(
            "PCIe link",
            "Link generation and width in lanes, current and maximum: "
            "current under maximum while busy is a degraded link.",
            "none",
            per_gpu("suanli_gpu_pcie_link_generation", " gen {{link}}"),
            per_gpu("suanli_gpu_pcie_link_width", " width {{link}}"),
            w=8,
        ),
        timeseries(
            "PCIe replays",
            "Link-level retransmissions per second: a rising rate is a marginal link.",
            "cps",
            Query(rate("suanli_gpu_pcie_replays_total"), legend=PER_GPU),
            w=8,
        ),
    ]


def nvlink_panels() -> list[Json]:
    """NVLink links, throughput and errors."""
    return [
        timeseries(
            "NVLink links",
            "NVLink links up and down. The per-link line needs collectors.gpu.detail: true in "
            "the agent's configuration (off by default). Empty on boards without NVLink.",
            "none",
            per_gpu("suanli_gpu_nvlink_links", " {{state}}"),
            Query(
                f"sum by (instance, gpu) ({g('suanli_gpu_nvlink_up')})",
                legend=f"{PER_GPU} links up (detail)",
            ),
            w=8,
            no_value="No NVLink on the selected GPUs",
        ),
        timeseries(
            "NVLink throughput",
            "NVLink data bytes per second, summed over links.",
            "Bps",
            Query(rate("suanli_gpu_nvlink_bytes_total"), legend=f"{PER_GPU} {{{{direction}}}}"),
            w=8,
        ),
        timeseries(
            "NVLink errors",
            "NVLink CRC, replay and recovery errors per second.",
            "cps",
            Query(rate("suanli_gpu_nvlink_errors_total"), legend=f"{PER_GPU} {{{{error}}}}"),
            w=8,
        ),
    ]


def gpu_link_panels() -> list[Json]:
    """The PCIe and NVLink rows, in dashboard order."""
    return [*pcie_panels(), *nvlink_panels()]
