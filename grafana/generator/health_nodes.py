"""The health dashboard's node-level rows: GPUs lost, missing or hung, XIDs by action, the
NVSwitch fabric and its SXids, kernel logs, InfiniBand / RoCE ports, and the agents themselves.
`failing()` and `PER_MINUTE` serve both halves of the dashboard (`health.py` has the other)."""

from __future__ import annotations

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

CHECKS = "suanli_gpu_health_check_failed:sum"
PER_MINUTE = 60


def failing(checks: str) -> Query:
    """GPUs of the selected racks failing each of `checks` (a regex of check names)."""
    return Query(rack_sum(CHECKS, "check", f'check=~"{checks}"'), legend="{{check}}")


def presence_panels() -> list[Json]:
    """GPUs the nodes should have against those answering, and why the others do not."""
    lost = rack_sum("suanli_gpus:sum", extra='state="lost"')
    reasons = rack_sum("suanli_gpu_unresponsive:count", "reason", 'reason!=""')
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
    ]


def lost_panels() -> list[Json]:
    """Where the GPUs that do not answer are: by hall, and each one."""
    by_hall = sel("cluster_hall:suanli_gpus:sum", HALL, 'state="lost"')
    down = sel("suanli_gpu_unresponsive_seconds", GPU)
    return [
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


def fabric_trends() -> list[Json]:
    """XIDs by the catalogue's action, NVSwitch SXids, GPUs without a registered fabric."""
    actions = rack_sum("suanli_gpu_xid_errors:rate5m", "action", 'action!=""')
    sxids = rack_sum("suanli_nvswitch_sxid_errors:rate5m", "sxid", 'sxid!=""')
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
            failing("fabric"),
            w=8,
        ),
    ]


def fabric_tables() -> list[Json]:
    """SXids per switch, GPUs without a registered fabric, kernel logs the agents cannot read."""
    per_switch = (
        "sum by (cluster, hall, rack, instance, switch, link, sxid) "
        f"(increase({sel('suanli_nvswitch_sxid_errors_total', NODE)}[$__range]))"
    )
    pending = sel("suanli_gpu_fabric_info", GPU, 'state!="completed"')
    failed = sel("suanli_gpu_fabric_info", GPU, 'status!="success"')
    unread = sel("cluster_hall_rack:suanli_kmsg_down:count", RACK)
    return [
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


def _grew(counter: str) -> Query:
    """Ports whose `counter` rose over the time range, and by how much."""
    ports = "cluster, hall, rack, instance, device, port"
    return Query(f"sum by ({ports}) (increase({sel(counter, NODE)}[$__range])) > 0")


def infiniband_tables() -> list[Json]:
    """The InfiniBand / RoCE row: tables of the ports in trouble, from default series only."""
    up = sel("suanli_infiniband_port_up", NODE)
    rate = sel("suanli_infiniband_port_rate_bytes_per_second", NODE)
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
            _grew("suanli_infiniband_link_downed_total"),
            _grew("suanli_infiniband_receive_errors_total"),
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
