"""6. Node and GPU detail, the GPUs' health: answering and healthy, checks, XIDs, ECC and memory
repair, recovery actions, GPUs lost or missing, the NVSwitch fabric and its SXids."""

from __future__ import annotations

from grafana.generator.node_gpu import PER_GPU, RATE, g, per_gpu
from grafana.generator.panels import Json, Query, state_timeline, timeseries, value_map
from grafana.generator.promql import NODE, sel
from grafana.generator.tables import table

OK_FAILED = value_map({0: ("no", "green"), 1: ("yes", "red")})
ACTIONS = value_map(
    {
        0: ("none", "green"),
        1: ("reset", "orange"),
        2: ("reboot", "red"),
        3: ("drain P2P", "orange"),
        4: ("drain and reset", "red"),
    }
)


def verdict_panels() -> list[Json]:
    """Whether each GPU answers, the agent's verdict, and the checks failing."""
    checks = Query(f"sum by (check) ({g('suanli_gpu_health_check_failed')})", legend="{{check}}")
    return [
        state_timeline(
            "GPU answering",
            "1 while the last NVML read of the GPU succeeded.",
            "none",
            per_gpu("suanli_gpu_up"),
            mappings=value_map({0: ("down", "red"), 1: ("up", "green")}),
            w=8,
        ),
        state_timeline(
            "GPU healthy",
            "The agent's verdict: healthy while every check passes.",
            "none",
            per_gpu("suanli_gpu_healthy"),
            mappings=value_map({0: ("unhealthy", "red"), 1: ("healthy", "green")}),
            w=8,
        ),
        state_timeline(
            "Checks failing",
            "GPUs of the selection failing each check.",
            "none",
            checks,
            mappings=value_map({0: ("ok", "green")}, above=("", "red")),
            w=8,
        ),
    ]


def error_panels() -> list[Json]:
    """XIDs, ECC errors, and the memory rows remapped or pages retired for them."""
    xids = Query(
        f"increase({g('suanli_gpu_xid_errors_total')}{RATE})", legend=f"{PER_GPU} XID {{{{xid}}}}"
    )
    memory = f"{g('suanli_gpu_remapped_rows')} or {g('suanli_gpu_retired_pages')}"
    return [
        timeseries("XIDs", "XID events by GPU and code.", "none", xids, w=8, bars=True),
        timeseries(
            "ECC errors",
            "Memory ECC errors since the driver loaded.",
            "none",
            per_gpu("suanli_gpu_ecc_errors_total", " {{error}}"),
            w=8,
        ),
        timeseries(
            "Remapped rows / retired pages",
            "Memory rows remapped (Ampere and newer) "
            "or pages retired (older GPUs), by kind of error.",
            "none",
            Query(memory, legend=f"{PER_GPU} {{{{kind}}}}{{{{cause}}}}"),
            w=8,
        ),
    ]


def recovery_panels() -> list[Json]:
    """What a GPU needs from an operator: a reset for a pending remap, NVML's recovery action."""
    return [
        state_timeline(
            "Row remap pending or failed",
            "A pending remap needs a GPU reset; a failed one is an RMA.",
            "none",
            per_gpu("suanli_gpu_row_remap_state", " {{state}}"),
            mappings=OK_FAILED,
            w=12,
        ),
        state_timeline(
            "Recovery action",
            "What NVML asks for: none, reset, reboot, drain peer-to-peer, drain and reset.",
            "none",
            per_gpu("suanli_gpu_recovery_action"),
            mappings=ACTIONS,
            w=12,
        ),
    ]


def presence_panels() -> list[Json]:
    """GPUs expected and answering, the ones that do not, the NVSwitch fabric and its SXids."""
    sxids = f"increase({sel('suanli_nvswitch_sxid_errors_total', NODE)}{RATE})"
    return [
        timeseries(
            "GPUs expected, present and lost",
            "GPUs the node should have (PCI bus, configuration, seen), has enumerated and "
            "answering, and has lost (the difference).",
            "none",
            Query(sel("suanli_gpus", NODE), legend="{{state}}"),
            w=8,
        ),
        table(
            "GPUs not answering",
            "Each GPU that does not answer now, why (lost, hung, error, missing, nvml_down) "
            "and for how long; a GPU NVML does not list is named by its PCI bus id.",
            "s",
            Query(g("suanli_gpu_unresponsive_seconds")),
            w=8,
            rename={"Value": "down for"},
        ),
        timeseries(
            "NVSwitch SXids",
            "SXid errors of the node's NVSwitches from the kernel log, by switch, link and code.",
            "none",
            Query(sxids, legend="{{switch}} link {{link}} SXid {{sxid}}"),
            w=8,
            bars=True,
        ),
        table(
            "NVSwitch fabric",
            "Each GPU's NVSwitch fabric registration as NVML reports it (HGX boards): state "
            "completed and status success when the GPU can use NVLink.",
            "none",
            Query(g("suanli_gpu_fabric_info")),
            w=24,
            hide=("Value",),
        ),
    ]


def gpu_health_panels() -> list[Json]:
    """The GPU health rows, in dashboard order."""
    return [*verdict_panels(), *error_panels(), *recovery_panels(), *presence_panels()]
