"""Panel builders: Grafana 10 panel JSON (schema 39) for the seven panel types the dashboards use
(the table's builder is in `tables.py`).

Every builder takes a title, a description and a unit, so no panel can lack them; every panel
reads the `${datasource}` variable. Panels get their `id` and `gridPos` x/y from
`board.layout()`; the builders set only width and height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]
DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}
NODE_UID = "suanli-node"
GREEN: Json = {"color": "green", "value": None}


@dataclass(frozen=True)
class Query:
    """One PromQL target. `fmt`: time_series, table or heatmap (cumulative `le` buckets)."""

    expr: str
    legend: str = ""
    instant: bool = False
    fmt: str = "time_series"
    interval: str = ""


def target(query: Query, ref_id: str) -> Json:
    out: Json = {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": query.expr,
        "format": query.fmt,
        "instant": query.instant,
        "legendFormat": query.legend or "__auto",
        "range": not query.instant,
        "refId": ref_id,
    }
    if query.interval:
        out["interval"] = query.interval
    return out


def thresholds(bad_at: float | None = None, warn_at: float | None = None) -> Json:
    steps = [GREEN]
    if warn_at is not None:
        steps.append({"color": "orange", "value": warn_at})
    if bad_at is not None:
        steps.append({"color": "red", "value": bad_at})
    return {"mode": "absolute", "steps": steps}


def panel(
    kind: str,
    title: str,
    description: str,
    unit: str,
    queries: tuple[Query, ...],
    size: tuple[int, int],
    options: Json,
    defaults: Json | None = None,
) -> Json:
    """The fields every panel has; `defaults` adds to fieldConfig.defaults."""
    if not description or not unit or not queries:
        raise ValueError(f"panel {title!r} needs a description, a unit and a query")
    field_defaults: Json = {"color": {"mode": "thresholds"}, "thresholds": thresholds()}
    field_defaults["unit"] = unit
    field_defaults.update(defaults or {})
    return {
        "datasource": DATASOURCE,
        "description": description,
        "fieldConfig": {"defaults": field_defaults, "overrides": []},
        "gridPos": {"h": size[1], "w": size[0]},
        "options": options,
        "targets": [target(q, chr(ord("A") + i)) for i, q in enumerate(queries)],
        "title": title,
        "type": kind,
    }


def _legend(show: bool = True) -> Json:
    return {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": show}


def timeseries(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    w: int = 12,
    h: int = 8,
    stack: bool = False,
    bars: bool = False,
    min_: float | None = 0,
    max_: float | None = None,
    no_value: str | None = None,
) -> Json:
    """`no_value`: the text Grafana shows instead of "No data" (fieldConfig.defaults.noValue)."""
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if stack or bars else 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
    }
    defaults: Json = {"custom": custom, "color": {"mode": "palette-classic"}}
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    if no_value is not None:
        defaults["noValue"] = no_value
    options = {"legend": _legend(), "tooltip": {"mode": "multi", "sort": "desc"}}
    return panel("timeseries", title, description, unit, queries, (w, h), options, defaults)


def _reduce() -> Json:
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


def stat(
    title: str,
    description: str,
    unit: str,
    query: Query,
    *,
    w: int = 3,
    h: int = 4,
    bad_at: float | None = None,
    bad_below: float | None = None,
    decimals: int | None = None,
) -> Json:
    """A single value; red at `bad_at` or more, or under `bad_below`."""
    options = {
        "colorMode": "value",
        "graphMode": "none" if query.instant else "area",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": _reduce(),
        "textMode": "auto",
    }
    defaults: Json = {"thresholds": thresholds(bad_at)}
    if bad_below is not None:
        steps = [{"color": "red", "value": None}, {"color": "green", "value": bad_below}]
        defaults["thresholds"] = {"mode": "absolute", "steps": steps}
    if decimals is not None:
        defaults["decimals"] = decimals
    return panel("stat", title, description, unit, (query,), (w, h), options, defaults)


def gauge(
    title: str,
    description: str,
    unit: str,
    query: Query,
    *,
    w: int = 4,
    h: int = 8,
    max_: float = 1.0,
    low_is_bad: bool = True,
) -> Json:
    steps = (
        [
            {"color": "red", "value": None},
            {"color": "orange", "value": 0.2 * max_},
            {"color": "green", "value": 0.4 * max_},
        ]
        if low_is_bad
        else [
            GREEN,
            {"color": "orange", "value": 0.8 * max_},
            {"color": "red", "value": 0.95 * max_},
        ]
    )
    options = {
        "reduceOptions": _reduce(),
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
    }
    defaults: Json = {"min": 0, "max": max_, "thresholds": {"mode": "absolute", "steps": steps}}
    return panel("gauge", title, description, unit, (query,), (w, h), options, defaults)


def bargauge(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    w: int = 8,
    h: int = 8,
    bad_at: float | None = None,
) -> Json:
    options = {
        "displayMode": "gradient",
        "minVizHeight": 10,
        "minVizWidth": 0,
        "orientation": "horizontal",
        "reduceOptions": _reduce(),
        "showUnfilled": True,
        "valueMode": "color",
    }
    defaults: Json = {
        "min": 0,
        "thresholds": thresholds(bad_at),
        "color": {"mode": "continuous-BlYlRd"},
    }
    return panel("bargauge", title, description, unit, queries, (w, h), options, defaults)


def heatmap(
    title: str, description: str, unit: str, query: Query, *, y_unit: str, w: int = 12, h: int = 9
) -> Json:
    """A heatmap of pre-bucketed series: `le` buckets (fmt heatmap) or one row per series."""
    options = {
        "calculate": False,
        "cellGap": 1,
        "cellValues": {"unit": unit},
        "color": {
            "exponent": 0.5,
            "fill": "dark-orange",
            "mode": "scheme",
            "reverse": False,
            "scale": "exponential",
            "scheme": "Oranges",
            "steps": 64,
        },
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "filterValues": {"le": 1e-09},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "showValue": "never",
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": False},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": y_unit},
    }
    return panel("heatmap", title, description, unit, (query,), (w, h), options)


def state_timeline(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    mappings: list[Json],
    w: int = 12,
    h: int = 8,
) -> Json:
    options = {
        "alignValue": "left",
        "legend": _legend(),
        "mergeValues": True,
        "rowHeight": 0.9,
        "showValue": "never",
        "tooltip": {"mode": "single", "sort": "none"},
    }
    defaults: Json = {"mappings": mappings, "custom": {"fillOpacity": 80, "lineWidth": 0}}
    return panel("state-timeline", title, description, unit, queries, (w, h), options, defaults)


def _shown(text: str, colour: str, index: int) -> Json:
    return {"color": colour, "index": index, **({"text": text} if text else {})}


def value_map(
    texts: dict[int, tuple[str, str]], above: tuple[str, str] | None = None
) -> list[Json]:
    """Value mappings {value: (text, colour)}; `above`: anything over the largest value.

    An empty text keeps the number and only colours it.
    """
    exact = {str(v): _shown(t, c, i) for i, (v, (t, c)) in enumerate(texts.items())}
    out: list[Json] = [{"options": exact, "type": "value"}]
    if above is not None:
        result = _shown(*above, len(texts))
        span = {"from": max(texts) + 1, "result": result, "to": 1e9}
        out.append({"options": span, "type": "range"})
    return out


def today(out: Json) -> Json:
    """`out` over today so far (midnight in the browser's time zone to now)."""
    out["timeFrom"] = "now/d"
    return out


def link_to(out: Json, uid: str, title: str) -> Json:
    """`out` with a panel link to dashboard `uid`, keeping the variables and the time range."""
    url = f"/d/{uid}?${{__all_variables}}&${{__url_time_range}}"
    out["links"] = [{"targetBlank": False, "title": title, "url": url}]
    return out
