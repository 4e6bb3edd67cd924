"""4. Health: failing checks, XIDs, ECC and row remapping, PCIe, thermal, GPUs lost, missing or
hung, XIDs by action, NVSwitch fabric and SXids, InfiniBand / RoCE ports, kernel logs, agent
staleness. This module has the GPU-level rows; `health_nodes.py` the node-level ones."""

from __future__ import annotations

from grafana.generator.board import dashboard
from grafana.generator.health_nodes import (
    CHECKS,
    PER_MINUTE,
    agent_panels,
    fabric_tables,
    fabric_trends,
    failing,
    infiniband_tables,
    lost_panels,
    presence_panels,
)
from grafana.generator.panels import (
    Json,
    Query,
    bargauge,
    stat,
    state_timeline,
    timeseries,
    value_map,
)
from grafana.generator.promql import GPU, RACK, rack_sum, sel
from grafana.generator.tables import table

UID = "suanli-health"
TITLE = "Suanli / Health"
UP = sel("up", RACK, 'job="suanli"')  # the scrape job of deploy/prometheus/prometheus.yml


def _alarm(title: str, description: str, unit: str, expr: str) -> Json:
    """A summary stat: a count that is red from 1."""
    return stat(title, description, unit, Query(expr), w=4, bad_at=1)


def gpu_stats() -> list[Json]:
    """Summary row, GPUs: unhealthy, lost, with a critical XID, XIDs per minute."""
    xids = f"{rack_sum('suanli_gpu_xid_errors:rate5m')} * {PER_MINUTE}"
    critical = rack_sum(CHECKS, extra='check="xid_critical"')
    return [
        _alarm(
            "Unhealthy GPUs",
            "GPUs that answer but fail a health check.",
            "none",
            rack_sum("suanli_gpu_unhealthy:count"),
        ),
        _alarm(
            "Lost GPUs",
            "GPUs that stopped answering NVML: drain and reboot the node.",
            "none",
            rack_sum("suanli_gpu_lost:count"),
        ),
        _alarm(
            "GPUs with a critical XID",
            "GPUs with an XID that needs an operator within the "
            "agent's window (1 h by default; docs/health.md).",
            "none",
            critical,
        ),
        _alarm(
            "XIDs per minute",
            "XID events of the selected racks, per minute over 5 min.",
            "cpm",
            xids,
        ),
    ]


def agent_stats() -> list[Json]:
    """Summary row, the agents: not scraped, collectors failing."""
    return [
        _alarm(
            "Agents down",
            "Nodes whose agent Prometheus cannot scrape (up == 0): none of "
            "their GPUs is monitored.",
            "none",
            f"sum({UP} == bool 0)",
        ),
        _alarm(
            "Collectors failing",
            "Agent collectors (gpu, host, power) whose last run failed "
            "or overran: their metrics are stale.",
            "none",
            f"sum({sel('suanli_collector_success', RACK)} == bool 0)",
        ),
    ]


def check_panels() -> list[Json]:
    per_check = Query(rack_sum(CHECKS, "check"), legend="{{check}}")
    instant = Query(per_check.expr, legend="{{check}}", instant=True)
    mappings = value_map({0: ("ok", "green")}, above=("", "red"))
    return [
        bargauge(
            "GPUs failing each check",
            "GPUs of the selected racks failing each health "
            "check now (docs/health.md explains each check).",
            "none",
            instant,
            bad_at=1,
        ),
        state_timeline(
            "Checks over time",
            "Each check: green while no GPU fails it, red with the number of GPUs failing it.",
            "none",
            per_check,
            mappings=mappings,
            w=16,
        ),
    ]


def error_trends() -> list[Json]:
    """XIDs, ECC errors, ECC and row remapping over time."""
    xids = rack_sum("suanli_gpu_xid_errors:rate5m", "xid", 'xid!=""')
    ecc = rack_sum("suanli_gpu_ecc_errors:rate5m", "error")
    return [
        timeseries(
            "XIDs by code",
            "XID events per minute by XID code (rate over 5 min).",
            "cpm",
            Query(f"{xids} * {PER_MINUTE}", legend="XID {{xid}}"),
        ),
        timeseries(
            "ECC errors",
            "Memory ECC errors per minute, corrected and uncorrected.",
            "cpm",
            Query(f"{ecc} * {PER_MINUTE}", legend="{{error}}"),
        ),
        timeseries(
            "ECC and row remapping",
            "GPUs with an uncorrectable ECC error, a row "
            "remap pending (reset needed) or a failed remap (RMA).",
            "none",
            failing("uncorrectable_ecc|row_remap_pending|row_remap_failure"),
        ),
    ]


def degradation_trends() -> list[Json]:
    """Links, heat and recovery actions over time."""
    thermal = rack_sum("suanli_gpu_throttle_seconds:rate5m", extra='reason="thermal"')
    return [
        timeseries(
            "PCIe and NVLink degradation",
            "GPUs whose PCIe link runs below its "
            "maximum width or generation while busy, and GPUs with NVLink links down.",
            "none",
            failing("pcie_link_degraded|nvlink_down"),
        ),
        timeseries(
            "Thermal events",
            "GPUs failing the thermal check (clocks held down for "
            "heat), and GPU-equivalents of thermal throttling (throttled seconds per "
            "second).",
            "none",
            failing("thermal"),
            Query(thermal, legend="thermally throttled GPU-equivalents"),
        ),
        timeseries(
            "Recovery actions and lost GPUs",
            "GPUs for which NVML asks for a reset or reboot, and GPUs lost.",
            "none",
            failing("recovery_action|lost"),
        ),
    ]


def event_tables() -> list[Json]:
    """Per GPU: the checks failing now, the XIDs in the time range."""
    failing_now = sel("gpu:suanli_gpu_health_check_failed:failing", GPU)
    xids = (
        "sum by (cluster, hall, rack, instance, gpu, xid) "
        f"(increase({sel('suanli_gpu_xid_errors_total', GPU)}[$__range]))"
    )
    return [
        table(
            "GPUs failing checks now",
            "One row per GPU and failing check, on the selected "
            "nodes. Click a node for its detail.",
            "none",
            Query(failing_now),
            hide=("Value", "uuid"),
        ),
        table(
            "XIDs in range by GPU",
            "XID events per GPU and code over the dashboard's time range (GPUs that ever had one).",
            "none",
            Query(xids),
            rename={"Value": "events"},
        ),
    ]


def hardware_tables() -> list[Json]:
    """Per GPU: PCIe links trained narrow, ECC errors."""
    current = sel("suanli_gpu_pcie_link_width", GPU, 'link="current"')
    widest = sel("suanli_gpu_pcie_link_width", GPU, 'link="max"')
    errors = sel("suanli_gpu_ecc_errors_total", GPU)
    ecc = f"sum by (cluster, hall, rack, instance, gpu, error) ({errors}) > 0"
    return [
        table(
            "PCIe links below maximum width",
            "GPUs whose PCIe link trained narrower than "
            "it can: reseat the GPU or riser at the next window.",
            "none",
            Query(f"{current} < ignoring (link) {widest}"),
            rename={"Value": "lanes"},
            hide=("uuid", "link"),
        ),
        table(
            "GPUs with ECC errors",
            "ECC errors per GPU since the driver loaded, by kind.",
            "none",
            Query(ecc),
            rename={"Value": "errors"},
        ),
    ]


def build() -> Json:
    panels = [
        *gpu_stats(),
        *agent_stats(),
        *check_panels(),
        *error_trends(),
        *degradation_trends(),
        *event_tables(),
        *hardware_tables(),
        *presence_panels(),
        *lost_panels(),
        *fabric_trends(),
        *fabric_tables(),
        *infiniband_tables(),
        *agent_panels(),
    ]
    description = (
        "GPU health verdicts and the evidence behind them: failing checks, XIDs, ECC and row "
        "remapping, PCIe and NVLink, heat, GPUs lost, missing or hung, the NVSwitch fabric and "
        "its SXids, InfiniBand / RoCE ports, kernel logs and the agents themselves. "
        "Tables link to the node."
    )
    return dashboard(UID, TITLE, description, panels)
