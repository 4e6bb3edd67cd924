"""Dashboard skeleton: the chained variables, the constants, links between dashboards, layout."""

from __future__ import annotations

from collections.abc import Iterable

from grafana.generator.panels import DATASOURCE, Json

TAG = "suanli"
SCHEMA_VERSION = 39
GRID_WIDTH = 24
ALL: Json = {"selected": True, "text": ["All"], "value": ["$__all"]}

# name -> (label, query, description). Each variable narrows the next: cluster -> hall ->
# rack -> instance -> gpu. The first three read rollups (a few series each); instance reads
# suanli_node_info (one series per node, GPU-less nodes included); gpu one node's suanli_gpu_up.
CHAIN: dict[str, tuple[str, str, str]] = {
    "cluster": (
        "Cluster",
        "label_values(cluster:suanli_gpus:count, cluster)",
        "Clusters (Prometheus target label `cluster`, from the inventory).",
    ),
    "hall": (
        "Hall",
        'label_values(cluster_hall:suanli_gpus:count{cluster=~"$cluster"}, hall)',
        "Halls of the selected clusters (target label `hall`).",
    ),
    "rack": (
        "Rack",
        "label_values(cluster_hall_rack:suanli_gpus:count"
        '{cluster=~"$cluster",hall=~"$hall"}, rack)',
        "Racks of the selected halls (target label `rack`).",
    ),
    "instance": (
        "Node",
        'label_values(suanli_node_info{cluster=~"$cluster",hall=~"$hall",rack=~"$rack"}, instance)',
        "Nodes (scrape targets, host:port) of the selected racks.",
    ),
    "gpu": (
        "GPU",
        'label_values(suanli_gpu_up{instance=~"$instance"}, gpu)',
        "GPUs (NVML index) of the selected nodes.",
    ),
}

# name -> (label, default, description): editable on the dashboard, numbers in the queries.
CONSTANTS: dict[str, tuple[str, str, str]] = {
    "pue": (
        "PUE",
        "1.25",
        "Power usage effectiveness: facility energy / IT energy. Zhangjiakou centres run at about "
        "1.25 (Alibaba's fleet 1.20).",
    ),
    "carbon_intensity": (
        "Grid kg CO2/kWh",
        "0.58",
        "Carbon intensity of grid electricity, kg CO2 per kWh (North China grid about 0.58).",
    ),
    "green_share": (
        "Green share",
        "0.31",
        "Share of the electricity from wind and solar (0..1): counted as zero-carbon. "
        "Zhangjiakou was 31% green in Q1 2025.",
    ),
}


def datasource_variable() -> Json:
    return {
        "current": {},
        "description": "The Prometheus (or VictoriaMetrics, Thanos, Mimir) that holds the "
        "Suanli series and recording rules.",
        "hide": 0,
        "includeAll": False,
        "label": "Data source",
        "multi": False,
        "name": "datasource",
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "type": "datasource",
    }


def query_variable(name: str, *, single: bool = False) -> Json:
    label, query, description = CHAIN[name]
    return {
        "allValue": None if single else ".*",
        "current": {} if single else ALL,
        "datasource": DATASOURCE,
        "definition": query,
        "description": description,
        "hide": 0,
        "includeAll": not single,
        "label": label,
        "multi": not single,
        "name": name,
        "options": [],
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "sort": 3 if name == "gpu" else 1,
        "type": "query",
    }


def constant_variable(name: str) -> Json:
    label, default, description = CONSTANTS[name]
    return {
        "current": {"selected": False, "text": default, "value": default},
        "description": description,
        "hide": 0,
        "label": label,
        "name": name,
        "options": [{"selected": True, "text": default, "value": default}],
        "query": default,
        "type": "textbox",
    }


def variables(*, single_node: bool = False, constants: bool = False) -> list[Json]:
    out = [datasource_variable()]
    out += [query_variable(name, single=single_node and name == "instance") for name in CHAIN]
    if constants:
        out += [constant_variable(name) for name in CONSTANTS]
    return out


def links() -> list[Json]:
    """A drop-down of every Suanli dashboard, keeping the time range and the variables."""
    return [
        {
            "asDropdown": False,
            "icon": "external link",
            "includeVars": True,
            "keepTime": True,
            "tags": [TAG],
            "targetBlank": False,
            "title": "Suanli",
            "tooltip": "The other Suanli dashboards",
            "type": "dashboards",
            "url": "",
        }
    ]


def layout(panels: Iterable[Json]) -> list[Json]:
    """Ids 1..n in order and positions left to right, wrapping at the grid's 24 columns."""
    out: list[Json] = []
    x = y = row_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        panel["id"] = panel_id
        panel["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x, row_height = x + w, max(row_height, h)
        out.append(panel)
    return out


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: Iterable[Json],
    *,
    single_node: bool = False,
    constants: bool = False,
) -> Json:
    annotation = {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }
    return {
        "annotations": {"list": [annotation]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": links(),
        "liveNow": False,
        "panels": layout(panels),
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": [TAG],
        "templating": {"list": variables(single_node=single_node, constants=constants)},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }
