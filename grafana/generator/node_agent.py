"""The node dashboard's panels about the agent itself: collectors, kernel log, NVML errors,
configuration reloads and the HTTP server (connections, evictions, rejected requests)."""

from __future__ import annotations

from grafana.generator.panels import Json, Query, stat, state_timeline, timeseries, value_map
from grafana.generator.promql import NODE, sel

RATE = "[$__rate_interval]"


def n(metric: str, extra: str = "") -> str:
    """`metric` on the selected node."""
    return sel(metric, NODE, extra)


def agent_panels() -> list[Json]:
    """The agent's rows, in dashboard order."""
    return [*collector_panels(), *log_panels(), *config_panels(), *http_panels()]


def collector_panels() -> list[Json]:
    """Each collector: succeeding, its run time, the time since it last succeeded."""
    ok = value_map({0: ("failed", "red"), 1: ("ok", "green")})
    age = f"time() - {n('suanli_collector_last_success_timestamp_seconds')}"
    return [
        state_timeline(
            "Collectors",
            "Whether each collector's last run succeeded within its deadline.",
            "none",
            Query(n("suanli_collector_success"), legend="{{collector}}"),
            mappings=ok,
            w=8,
        ),
        timeseries(
            "Collector run time",
            "How long each collector's last run took (or has been running, when stuck).",
            "s",
            Query(n("suanli_collector_duration_seconds"), legend="{{collector}}"),
            w=8,
        ),
        timeseries(
            "Since last success",
            "Seconds since each collector last succeeded.",
            "s",
            Query(age, legend="{{collector}}"),
            w=8,
        ),
    ]


def log_panels() -> list[Json]:
    """The kernel log read, NVML calls failing and NVML functions turned off."""
    return [
        state_timeline(
            "Kernel log read",
            "Whether the agent reads the kernel log (XID and NVSwitch SXid lines): 0 when "
            "/dev/kmsg is missing or not readable by the agent's user.",
            "none",
            Query(n("suanli_kmsg_up"), legend="kernel log"),
            mappings=value_map({0: ("not read", "red"), 1: ("read", "green")}),
            w=12,
        ),
        timeseries(
            "NVML errors",
            "NVML calls that failed per second, by function and error; a line at 1 marks an "
            "NVML function the agent turned off because the child process that first called it "
            "died (docs/hardware-validation.md).",
            "cps",
            Query(f"rate({n('suanli_nvml_errors_total')}{RATE})", legend="{{function}} {{error}}"),
            Query(n("suanli_nvml_function_disabled"), legend="off: {{function}} ({{reason}})"),
            w=12,
        ),
    ]


def config_panels() -> list[Json]:
    reload_age = f"time() - max({n('suanli_config_last_reload_success_timestamp_seconds')})"
    return [
        stat(
            "Config loaded",
            "1 when the last configuration load (start or SIGHUP) succeeded.",
            "none",
            Query(f"min({n('suanli_config_last_reload_successful')})"),
            w=6,
            h=8,
            bad_below=1,
        ),
        stat(
            "Config age",
            "Time since the configuration was last loaded successfully.",
            "s",
            Query(reload_age),
            w=6,
            h=8,
        ),
        stat(
            "Reloads refused",
            "Configuration reloads (SIGHUP) refused since the agent started; each time the "
            "running configuration was kept.",
            "none",
            Query(f"max({n('suanli_config_reloads_failed_total')})"),
            w=6,
            h=8,
            bad_at=1,
        ),
    ]


def http_panels() -> list[Json]:
    per_reason = "{{reason}}"
    return [
        timeseries(
            "HTTP connections",
            "Connections open to the agent. At the cap (512) a new one evicts the connection "
            "that made no progress for longest: near it means idle or hostile clients.",
            "none",
            Query(n("suanli_http_connections_open"), legend="open"),
            w=6,
        ),
        timeseries(
            "HTTP evictions",
            "Connections the agent closed per second: idle (nothing sent in time), slow (a "
            "request or an answer past its deadline), capacity (at the connection cap).",
            "cps",
            Query(f"rate({n('suanli_http_connections_evicted_total')}{RATE})", legend=per_reason),
        ),
        timeseries(
            "HTTP requests rejected",
            "Requests answered with an error and no data, per second: malformed, oversized "
            "heads, other methods, failed basic auth, and attempts throttled after failures.",
            "cps",
            Query(f"rate({n('suanli_http_requests_rejected_total')}{RATE})", legend=per_reason),
        ),
    ]
