"""InfiniBand / RoCE ports of one node, for the node dashboard: every `suanli_infiniband_*` metric.

The traffic, per-kind error, transmit-wait and port-info panels chart *detail* families: empty
unless `collectors.infiniband.detail` is on.
"""

from __future__ import annotations

from grafana.generator.panels import Json, Query, state_timeline, timeseries, value_map
from grafana.generator.promql import NODE, sel
from grafana.generator.tables import table

PORT = "{{device}}/{{port}}"
RATE = "[$__rate_interval]"
PER_MINUTE = 60


def _n(metric: str) -> str:
    return sel(metric, NODE)


def _rate(metric: str) -> str:
    return f"rate({_n(metric)}{RATE})"


def infiniband_panels() -> list[Json]:
    up = value_map({0: ("down", "red"), 1: ("up", "green")})
    return [
        state_timeline(
            "InfiniBand / RoCE ports up",
            "Each port: up while ACTIVE with its physical link LinkUp, down otherwise.",
            "none",
            Query(_n("suanli_infiniband_port_up"), legend=PORT),
            mappings=up,
            w=8,
        ),
        timeseries(
            "InfiniBand / RoCE port rate",
            "Each port's negotiated signalling rate (400 Gb/s NDR is 50 GB/s); a drop "
            "with the port up is a link retrained at fewer lanes or a lower speed.",
            "Bps",
            Query(_n("suanli_infiniband_port_rate_bytes_per_second"), legend=PORT),
            w=8,
        ),
        timeseries(
            "InfiniBand / RoCE link downs and receive errors",
            "Per minute: link downs, and symbol plus receive errors, per port.",
            "cpm",
            Query(
                f"{_rate('suanli_infiniband_link_downed_total')} * {PER_MINUTE}",
                legend=f"{PORT} link downs",
            ),
            Query(
                f"{_rate('suanli_infiniband_receive_errors_total')} * {PER_MINUTE}",
                legend=f"{PORT} receive errors",
            ),
            w=8,
        ),
        *detail_panels(),
    ]


def detail_panels() -> list[Json]:
    return [
        timeseries(
            "InfiniBand / RoCE traffic",
            "Data sent and received per port (detail).",
            "Bps",
            Query(_rate("suanli_infiniband_bytes_total"), legend=f"{PORT} {{{{direction}}}}"),
            w=8,
        ),
        timeseries(
            "InfiniBand / RoCE errors by kind",
            "Per minute, each error counter of each port by its sysfs name (detail).",
            "cpm",
            Query(
                f"{_rate('suanli_infiniband_errors_total')} * {PER_MINUTE}",
                legend=f"{PORT} {{{{error}}}}",
            ),
            w=8,
        ),
        timeseries(
            "InfiniBand / RoCE transmit wait",
            "Ticks per second a port had data but no credit to send: congestion (detail).",
            "short",
            Query(_rate("suanli_infiniband_xmit_wait_total"), legend=PORT),
            w=8,
        ),
        table(
            "InfiniBand / RoCE ports",
            "Each port's state, physical state, link layer (Ethernet is RoCE) and adapter "
            "(detail).",
            "none",
            Query(_n("suanli_infiniband_port_info")),
            w=24,
            h=6,
            hide=("Value",),
        ),
    ]
