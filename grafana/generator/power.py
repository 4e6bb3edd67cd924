"""3. Power, energy and carbon: IT and facility power, energy by hall and job, caps, throttling."""

from __future__ import annotations

from grafana.generator.board import dashboard
from grafana.generator.panels import Json, Query, bargauge, stat, timeseries
from grafana.generator.promql import (
    A_JOB,
    CLUSTER,
    HALL,
    JOB_POWER,
    JOULES_PER_KWH,
    JOULES_PER_WH,
    integral,
    rack,
    rack_sum,
    sel,
)
from grafana.generator.tables import table

UID = "suanli-power"
TITLE = "Suanli / Power, energy and carbon"
NODE_POWER = "suanli_node_power_watts:sum"


def _it_energy_kwh() -> str:
    return f"{integral(rack(NODE_POWER))} / {JOULES_PER_KWH:.0f}"


def week(panel: Json) -> Json:
    """`panel` over the last 7 days, whatever the dashboard's range."""
    panel["timeFrom"] = "7d"
    return panel


def power_stats() -> list[Json]:
    """IT and facility power now."""
    it_power = rack_sum(NODE_POWER)
    return [
        stat(
            "IT power now",
            "Node power of the selected racks: the platform meter where a "
            "node has one, else GPUs + CPU packages + DRAM.",
            "watt",
            Query(it_power),
            w=4,
            decimals=2,
        ),
        stat(
            "Facility power now",
            "IT power x the PUE constant (cooling, power conversion, lighting).",
            "watt",
            Query(f"{it_power} * $pue"),
            w=4,
            decimals=2,
        ),
    ]


def _in_range(title: str, description: str, unit: str, expr: str, decimals: int = 2) -> Json:
    """A stat over the dashboard's time range: `expr` integrates over it, read at its end."""
    return stat(title, description, unit, Query(expr, instant=True), w=4, decimals=decimals)


def energy_stats() -> list[Json]:
    """IT and facility energy, grid CO2 and GPU energy over the dashboard's time range."""
    it_wh = f"{integral(rack(NODE_POWER))} / {JOULES_PER_WH}"
    co2 = f"{_it_energy_kwh()} * $pue * $carbon_intensity * (1 - $green_share)"
    gpu_wh = f"{integral(rack('suanli_gpu_energy_joules:rate5m'))} / {JOULES_PER_WH}"
    return [
        _in_range(
            "IT energy in range",
            "Node energy over the dashboard's time range, integrated from the node-power rollup.",
            "watth",
            it_wh,
        ),
        _in_range(
            "Facility energy in range",
            "IT energy x PUE: what the meter at the grid connection sees.",
            "watth",
            f"{it_wh} * $pue",
        ),
        _in_range(
            "Grid CO2 in range",
            "Facility energy in kWh x the non-green share x the grid's "
            "carbon intensity (dashboard constants).",
            "masskg",
            co2,
            decimals=1,
        ),
        _in_range(
            "GPU energy in range",
            "Energy of the GPUs alone, from their hardware energy "
            "counters (exact between scrapes), over the dashboard's time range.",
            "watth",
            gpu_wh,
        ),
    ]


def power_trends() -> list[Json]:
    sources = [
        Query(f"{rack_sum(NODE_POWER)} * $pue", legend="facility (IT x PUE)"),
        Query(rack_sum(NODE_POWER), legend="IT (nodes)"),
        Query(rack_sum("suanli_gpu_power_watts:sum"), legend="GPUs"),
        Query(rack_sum("suanli_cpu_power_watts:sum"), legend="CPUs and DRAM (RAPL)"),
    ]
    return [
        timeseries(
            "Power by source",
            "Facility, node, GPU and CPU power of the selected "
            "racks. CPU power is RAPL (packages and DRAM); nodes without readable RAPL "
            "add none.",
            "watt",
            *sources,
        ),
        timeseries(
            "IT power by hall",
            "Node power summed per hall.",
            "watt",
            Query(rack_sum(NODE_POWER, "hall"), legend="{{hall}}"),
            stack=True,
        ),
    ]


def energy_panels() -> list[Json]:
    by_hall = f"{integral(rack(NODE_POWER), 'hall')} / {JOULES_PER_WH}"
    daily = sel(f"cluster_hall:{NODE_POWER}", HALL)
    per_day = f"sum by (hall) (avg_over_time({daily}[1d])) * 86400 / {JOULES_PER_WH}"
    jobs = integral(sel(JOB_POWER, CLUSTER, A_JOB), "scheduler, job_id")
    return [
        bargauge(
            "IT energy by hall in range",
            "Node energy per hall over the dashboard's time range.",
            "watth",
            Query(by_hall, legend="{{hall}}", instant=True),
        ),
        week(
            timeseries(
                "IT energy per hall per day",
                "Node energy per hall and day (mean "
                "power of the hall-level rollup over each day x 24 h), the last 7 days.",
                "watth",
                Query(per_day, legend="{{hall}}", interval="1d"),
                w=8,
                bars=True,
            )
        ),
        bargauge(
            "GPU energy by job in range",
            "The 20 jobs whose GPUs drew the most energy "
            "over the dashboard's time range (a shared GPU's energy is split by use).",
            "watth",
            Query(
                f"topk(20, {jobs} / {JOULES_PER_WH})",
                legend="{{scheduler}} {{job_id}}",
                instant=True,
            ),
        ),
    ]


def limit_panels() -> list[Json]:
    limit = rack_sum("suanli_gpu_power_limit_watts:sum")
    ratio = f"{rack_sum('suanli_gpu_power_watts:sum')} / {limit}"
    throttle = (
        f"{rack_sum('suanli_gpu_throttle_seconds:rate5m', 'reason')} / ignoring (reason) "
        f"group_left () {rack_sum('suanli_gpus:count')}"
    )
    power, limit = rack("suanli_gpu_power_watts:sum"), rack("suanli_gpu_power_limit_watts:sum")
    closest = f"topk(10, {power} / {limit})"
    return [
        timeseries(
            "GPU power vs enforced limit",
            "GPU power over the sum of the GPUs' "
            "enforced power limits. Near 100%, GPUs are held at their caps.",
            "percentunit",
            Query(ratio, legend="power / limit"),
            max_=1,
        ),
        timeseries(
            "Throttled time by reason",
            "Share of GPU time with clocks held down, by "
            "reason (power cap, thermal), over all GPUs of the selection.",
            "percentunit",
            Query(throttle, legend="{{reason}}"),
        ),
        table(
            "Racks closest to their power limit",
            "The 10 racks of the selection whose GPUs draw the largest share of their enforced "
            "power limits now. Click a rack's node in the Node view for each GPU's limit.",
            "percentunit",
            Query(closest),
            rename={"Value": "power / limit"},
            w=24,
        ),
    ]


def build() -> Json:
    panels = [*power_stats(), *energy_stats(), *power_trends(), *energy_panels(), *limit_panels()]
    description = (
        "Power and energy of GPUs, CPUs and nodes; facility energy and CO2 from the PUE, "
        "carbon-intensity and green-share constants (edit them in the variable bar)."
    )
    return dashboard(UID, TITLE, description, panels, constants=True)
