"""4. Health: failing checks, XIDs, ECC and row remapping, PCIe, thermal, GPUs lost, missing or
hung, XIDs by action, NVSwitch fabric and SXids, InfiniBand / RoCE ports, kernel logs, agent
staleness."""

from __future__ import annotations

from grafana.generator.board import dashboard
from grafana.generator.panels import (
    NODE_UID,
    Json,
    Query,
    bargauge,
    link_to,
    stat,
    state_timeline,
    timeseries,
    value_map,
)
from grafana.generator.promql import GPU, HALL, NODE, RACK, rack_sum, sel
from grafana.generator.tables import table

UID = "suanli-health"
TITLE = "Suanli / Health"
CHECKS = "suanli_gpu_health_check_failed:sum"
PER_MINUTE = 60
UP = sel("up", RACK, 'job="suanli"')  # the scrape job of deploy/prometheus/prometheus.yml


def _failing(checks: str) -> Query:
    return Query(rack_sum(CHECKS, "check", f'check=~"{checks}"'), legend="{{check}}")


def summary_stats() -> list[Json]:
    xids = f"{rack_sum('suanli_gpu_xid_errors:rate5m')} * {PER_MINUTE}"
    critical = rack_sum(CHECKS, extra='check="xid_critical"')
    return [
        stat(
            "Unhealthy GPUs",
            "GPUs that answer but fail a health check.",
            "none",
            Query(rack_sum("suanli_gpu_unhealthy:count")),
            w=4,
            bad_at=1,
        ),
        stat(
            "Lost GPUs",
            "GPUs that stopped answering NVML: drain and reboot the node.",
            "none",
            Query(rack_sum("suanli_gpu_lost:count")),
            w=4,
            bad_at=1,
        ),
        stat(
            "GPUs with a critical XID",
            "GPUs with an XID that needs an operator within the "
            "agent's window (1 h by default; docs/health.md).",
            "none",
            Query(critical),
            w=4,
            bad_at=1,
        ),
        stat(
            "XIDs per minute",
            "XID events of the selected racks, per minute over 5 min.",
            "cpm",
            Query(xids),
            w=4,
            bad_at=1,
        ),
        stat(
            "Agents down",
            "Nodes whose agent Prometheus cannot scrape (up == 0): none of "
            "their GPUs is monitored.",
            "none",
            Query(f"sum({UP} == bool 0)"),
            w=4,
            bad_at=1,
        ),
        stat(
            "Collectors failing",
            "Agent collectors (gpu, host, power) whose last run failed "
            "or overran: their metrics are stale.",
            "none",
            Query(f"sum({sel('suanli_collector_success', RACK)} == bool 0)"),
            w=4,
            bad_at=1,
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


def trend_panels() -> list[Json]:
    xids = rack_sum("suanli_gpu_xid_errors:rate5m", "xid", 'xid!=""')
    ecc = rack_sum("suanli_gpu_ecc_errors:rate5m", "error")
    thermal = rack_sum("suanli_gpu_throttle_seconds:rate5m", extra='reason="thermal"')
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
            _failing("uncorrectable_ecc|row_remap_pending|row_remap_failure"),
        ),
        timeseries(
            "PCIe and NVLink degradation",
            "GPUs whose PCIe link runs below its "
            "maximum width or generation while busy, and GPUs with NVLink links down.",
            "none",
            _failing("pcie_link_degraded|nvlink_down"),
        ),
        timeseries(
            "Thermal events",
            "GPUs failing the thermal check (clocks held down for "
            "heat), and GPU-equivalents of thermal throttling (throttled seconds per "
            "second).",
            "none",
            _failing("thermal"),
            Query(thermal, legend="thermally throttled GPU-equivalents"),
        ),
        timeseries(
            "Recovery actions and lost GPUs",
            "GPUs for which NVML asks for a reset or reboot, and GPUs lost.",
            "none",
            _failing("recovery_action|lost"),
        ),
    ]


def gpu_tables() -> list[Json]:
    failing = sel("gpu:suanli_gpu_health_check_failed:failing", GPU)
    xids = (
        "sum by (cluster, hall, rack, instance, gpu, xid) "
        f"(increase({sel('suanli_gpu_xid_errors_total', GPU)}[$__range]))"
    )
    current = sel("suanli_gpu_pcie_link_width", GPU, 'link="current"')
    widest = sel("suanli_gpu_pcie_link_width", GPU, 'link="max"')
    errors = sel("suanli_gpu_ecc_errors_total", GPU)
    ecc = f"sum by (cluster, hall, rack, instance, gpu, error) ({errors}) > 0"
    return [
        table(
            "GPUs failing checks now",
            "One row per GPU and failing check, on the selected "
            "nodes. Click a node for its detail.",
            "none",
            Query(failing),
            hide=("Value", "uuid"),
        ),
        table(
            "XIDs in range by GPU",
            "XID events per GPU and code over the dashboard's time range (GPUs that ever had one).",
            "none",
            Query(xids),
            rename={"Value": "events"},
        ),
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


def presence_panels() -> list[Json]:
    """GPUs the nodes should have against those answering, and why the others do not."""
    lost = rack_sum("suanli_gpus:sum", extra='state="lost"')
    by_hall = sel("cluster_hall:suanli_gpus:sum", HALL, 'state="lost"')
    reasons = rack_sum("suanli_gpu_unresponsive:count", "reason", 'reason!=""')
    down = sel("suanli_gpu_unresponsive_seconds", GPU)
    return [
        stat(
            "GPUs lost or missing",
            "GPUs the selected nodes should have (PCI bus, configuration) minus those "
            "answering: lost since boot, hung, failing, or missing since boot (alert "
            "SuanliNodeGPUsLost).",
            "none",
            Query(lost),
            w=4,
            h=8,
            bad_at=1,
        ),
        timeseries(
            "GPUs expected, present and lost",
            "GPUs of the selected racks by the agents' count: expected (on the PCI bus or "
            "configured), present (enumerated and answering) and lost (the difference).",
            "none",
            Query(rack_sum("suanli_gpus:sum", "state"), legend="{{state}}"),
            w=8,
        ),
        timeseries(
            "GPUs not answering, by reason",
            "Why GPUs do not answer: lost (fallen off the bus), hung (NVML calls do not "
            "return), error (every call fails), missing (not enumerated at boot), nvml_down.",
            "none",
            Query(reasons, legend="{{reason}}"),
            w=6,
        ),
        bargauge(
            "Lost GPUs by hall",
            "GPUs lost or missing in each hall of the selected clusters and halls, now.",
            "none",
            Query(
                f"sum by (cluster, hall) ({by_hall})", legend="{{cluster}} / {{hall}}", instant=True
            ),
            w=6,
            bad_at=1,
        ),
        table(
            "Missing, hung and lost GPUs",
            "Each GPU of the selected nodes that does not answer, why, and for how long "
            "(seconds since it last answered). Missing GPUs are named by their PCI bus id.",
            "s",
            Query(down),
            rename={"Value": "down for"},
        ),
    ]


def fabric_panels() -> list[Json]:
    """XIDs by the catalogue's action, the NVSwitch fabric and its SXids, kernel logs read."""
    actions = rack_sum("suanli_gpu_xid_errors:rate5m", "action", 'action!=""')
    sxids = rack_sum("suanli_nvswitch_sxid_errors:rate5m", "sxid", 'sxid!=""')
    per_switch = (
        "sum by (cluster, hall, rack, instance, switch, link, sxid) "
        f"(increase({sel('suanli_nvswitch_sxid_errors_total', NODE)}[$__range]))"
    )
    pending = sel("suanli_gpu_fabric_info", GPU, 'state!="completed"')
    failed = sel("suanli_gpu_fabric_info", GPU, 'status!="success"')
    unread = sel("cluster_hall_rack:suanli_kmsg_down:count", RACK)
    return [
        timeseries(
            "XIDs by action",
            "XID events per minute by the action NVIDIA's XID catalogue gives for their code: "
            "reset_gpu, reboot_node, check_hardware and contact_support need an operator "
            "now (SuanliGPUXIDActionRequired), investigate within the day.",
            "cpm",
            Query(f"{actions} * {PER_MINUTE}", legend="{{action}}"),
            w=8,
        ),
        timeseries(
            "NVSwitch SXids by code",
            "NVSwitch SXid errors per minute by SXid code, from the nodes' kernel logs "
            "(alert SuanliNVSwitchSXid).",
            "cpm",
            Query(f"{sxids} * {PER_MINUTE}", legend="SXid {{sxid}}"),
            w=8,
        ),
        timeseries(
            "NVSwitch fabric not registered",
            "GPUs whose NVSwitch fabric registration has not completed successfully (HGX "
            "boards): they cannot use NVLink (alert SuanliGPUFabricIncomplete).",
            "none",
            _failing("fabric"),
            w=8,
        ),
        table(
            "SXids in range by switch",
            "SXid errors per NVSwitch, link and code on the selected nodes over the time "
            "range (switches that ever had one). Fatal or not: `dmesg | grep -i sxid`.",
            "none",
            Query(per_switch),
            w=8,
            rename={"Value": "events"},
        ),
        table(
            "GPUs without a registered fabric",
            "GPUs of the selected nodes whose fabric state is not completed or whose status is "
            "not success, as NVML reports them.",
            "none",
            Query(f"{pending} or {failed}"),
            w=8,
            hide=("Value",),
        ),
        state_timeline(
            "Kernel logs unread, by rack",
            "Nodes of each rack whose agent cannot read the kernel log (suanli_kmsg_up 0): "
            "their SXids go unseen (alert SuanliKernelLogUnreadable).",
            "none",
            Query(f"sum by (hall, rack) ({unread})", legend="{{hall}} / {{rack}}"),
            mappings=value_map({0: ("read", "green")}, above=("", "red")),
            w=8,
        ),
    ]


def infiniband_tables() -> list[Json]:
    """The InfiniBand / RoCE row: tables of the ports in trouble, from default series only."""
    ports = "cluster, hall, rack, instance, device, port"
    up = sel("suanli_infiniband_port_up", NODE)
    rate = sel("suanli_infiniband_port_rate_bytes_per_second", NODE)
    downs = sel("suanli_infiniband_link_downed_total", NODE)
    errors = sel("suanli_infiniband_receive_errors_total", NODE)
    return [
        table(
            "InfiniBand / RoCE ports down",
            "Ports not ACTIVE with their physical link up, now (alert "
            "SuanliInfinibandPortDown): the GPUs on that rail have no RDMA path.",
            "none",
            Query(f"{up} == 0"),
            w=8,
            hide=("Value",),
        ),
        table(
            "InfiniBand / RoCE link downs and errors in range",
            "Ports that lost their link or counted symbol and receive errors over the "
            "time range: a marginal cable or transceiver (SuanliInfinibandLinkFlapping, "
            "SuanliInfinibandReceiveErrors).",
            "none",
            Query(f"sum by ({ports}) (increase({downs}[$__range])) > 0"),
            Query(f"sum by ({ports}) (increase({errors}[$__range])) > 0"),
            w=8,
            rename={"Value #A": "link downs", "Value #B": "receive errors"},
        ),
        table(
            "InfiniBand / RoCE ports below their usual rate",
            "Ports up at a lower rate than their highest in the time range: retrained at "
            "fewer lanes or a lower speed (SuanliInfinibandPortRateDegraded).",
            "Bps",
            Query(
                f"{rate} < max_over_time({rate}[$__range]) "
                f"and on (instance, device, port) {up} == 1"
            ),
            w=8,
            rename={"Value": "rate"},
        ),
    ]


def agent_panels() -> list[Json]:
    last = sel("suanli_collector_last_success_timestamp_seconds", NODE)
    stalest = f"topk(20, time() - max by (cluster, hall, rack, instance) ({last}))"
    racks_last = sel("suanli_collector_last_success_timestamp_seconds", RACK)
    ages = f"max by (collector) (time() - {racks_last})"
    return [
        table(
            "Agent staleness",
            "The 20 nodes whose agent's last successful collection is "
            "oldest (seconds ago). Over a minute: a stuck NVML call or a dead agent.",
            "s",
            Query(stalest),
            rename={"Value": "last success"},
        ),
        link_to(
            timeseries(
                "Oldest collection by collector",
                "Across the selected racks, the age of the oldest last success of each collector.",
                "s",
                Query(ages, legend="{{collector}}"),
            ),
            NODE_UID,
            "Node detail",
        ),
    ]


def build() -> Json:
    panels = [
        *summary_stats(),
        *check_panels(),
        *trend_panels(),
        *gpu_tables(),
        *presence_panels(),
        *fabric_panels(),
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
