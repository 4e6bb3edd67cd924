"""The PromQL of the Grafana dashboards (grafana/dashboards/*.json), ready to run.

Shared by the dashboard tests and by anything else that needs to run the dashboards' queries
against a real Prometheus (a simulated center, a latency benchmark):

    queries = panel_queries(DASHBOARDS_DIR)
    variables = resolve_variables(board, label_values)        # or any dict name -> value
    promql = substitute(q.expr, variables, rate_interval="5s", range_="5m")

`substitute` does what Grafana does before it sends a query: it replaces the dashboard's
variables and Grafana's built-in `$__rate_interval`, `$__interval`, `$__range`, `$__range_s`,
`$__range_ms`. Multi-value variables are formatted as Grafana formats them for Prometheus: a
regex alternation `(a|b)` of values with regex characters escaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS_DIR = REPO_ROOT / "grafana" / "dashboards"
BUILTINS = ("__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*(?P<label>\w+)\s*\)\s*$", re.S)
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_REGEX_SPECIALS = re.compile(r"[$^*{}\[\]'+?.()|]")
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
}


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel."""

    dashboard: str  # the dashboard's title
    uid: str  # the dashboard's uid
    panel: str  # the panel's title
    panel_type: str  # timeseries, stat, gauge, heatmap, table, state-timeline, bargauge
    ref_id: str
    expr: str  # PromQL with Grafana variables, as stored
    instant: bool  # an instant query (tables, range totals) rather than a range query
    fmt: str  # time_series, table or heatmap

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def load_dashboards(dashboards_dir: Path = DASHBOARDS_DIR) -> list[dict[str, Any]]:
    """Every dashboard JSON in the directory, sorted by file name."""
    paths = sorted(dashboards_dir.glob("*.json"))
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def all_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's panels, those inside rows included."""
    out: list[dict[str, Any]] = []
    for panel in board.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def queries_of(board: dict[str, Any]) -> list[PanelQuery]:
    out = []
    for panel in all_panels(board):
        for t in panel.get("targets", []):
            out.append(
                PanelQuery(
                    board["title"],
                    board["uid"],
                    panel.get("title", ""),
                    panel["type"],
                    t["refId"],
                    t["expr"],
                    bool(t.get("instant")),
                    t.get("format", "time_series"),
                )
            )
    return out


def panel_queries(dashboards_dir: Path = DASHBOARDS_DIR) -> list[PanelQuery]:
    """Every panel query of every dashboard in the directory."""
    return [q for board in load_dashboards(dashboards_dir) for q in queries_of(board)]


def variable_query(variable: dict[str, Any]) -> str:
    """The query of a query variable (Grafana stores a string or {"query": ...})."""
    query = variable.get("query", "")
    return str(query.get("query", "") if isinstance(query, dict) else query)


def label_values_query(query: str) -> tuple[str, str]:
    """(selector, label) of `label_values(selector, label)`."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        raise ValueError(f"not a label_values(selector, label) query: {query!r}")
    return match["selector"].strip(), match["label"]


def duration_seconds(duration: str) -> float:
    """Seconds of a Prometheus duration like `5m`, `1h30m`, `250ms`."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(int(n) * _SECONDS[u] for n, u in parts)


def regex_escape(value: str) -> str:
    """A value escaped as Grafana escapes it for a Prometheus regex inside a PromQL string."""
    return _REGEX_SPECIALS.sub(lambda m: "\\\\" + m.group(0), value.replace("\\", "\\\\\\\\"))


def format_values(values: Iterable[str]) -> str:
    """A multi-value selection as Grafana sends it to Prometheus: `(a|b)`, or `a` for one."""
    escaped = [regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else f"({'|'.join(escaped)})"


def substitute(
    expr: str,
    variables: dict[str, str],
    rate_interval: str,
    range_: str,
    interval: str | None = None,
) -> str:
    """`expr` with dashboard variables and Grafana's built-ins replaced.

    `variables` maps names to the text to insert (already formatted, see format_values);
    `range_` is the dashboard's time range as a duration (`5m`); `interval` (the step,
    default `rate_interval`) replaces `$__interval`. Names that are neither variables nor
    built-ins are left alone, as Grafana leaves them.
    """
    range_s = duration_seconds(range_)
    step = interval or rate_interval
    builtins = {
        "__rate_interval": rate_interval,
        "__interval": step,
        "__interval_ms": str(int(duration_seconds(step) * 1000)),
        "__range": f"{int(range_s)}s",
        "__range_s": str(int(range_s)),
        "__range_ms": str(int(range_s * 1000)),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in builtins:
            return builtins[name]
        return variables.get(name, match.group(0))

    return _VARIABLE.sub(replace, expr)


def referenced_variables(text: str) -> set[str]:
    """Names of the variables `text` refers to (`$name`, `${name}`, `${name:fmt}`, `[[name]]`)."""
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(text)}


def resolve_variables(
    board: dict[str, Any],
    label_values: Callable[[str, str], list[str]],
    choose: Callable[[str, list[str]], list[str]] = lambda name, values: values,
) -> dict[str, str]:
    """Values for every variable of `board`, resolved in order like Grafana's chain.

    Query variables run `label_values(selector, label)` through `label_values(selector,
    label)` (e.g. Prometheus's /api/v1/label/<label>/values?match[]=selector), with the
    variables before them substituted; `choose` picks among the values (default: all of them,
    as a multi-value selection). Text boxes and constants keep their default. A variable with
    no values raises LookupError naming it.
    """
    resolved: dict[str, str] = {}
    for variable in board["templating"]["list"]:
        name, kind = variable["name"], variable["type"]
        if kind in ("textbox", "constant"):
            resolved[name] = str(variable["query"])
        elif kind == "query":
            selector, label = label_values_query(variable_query(variable))
            values = sorted(set(label_values(substitute(selector, resolved, "1m", "1h"), label)))
            picked = choose(name, values)
            if not picked:
                raise LookupError(f"variable {name!r} of {board['title']!r} has no values")
            resolved[name] = format_values(picked)
    return resolved


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (not functions, keywords, labels or durations)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)\s*(\()?", text):
        if match.group(2) is None and match.group(1).lower() not in _KEYWORDS:
            names.add(match.group(1))
    return names
