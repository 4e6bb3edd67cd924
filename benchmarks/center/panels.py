"""The Grafana dashboards' panel queries, run against Prometheus as Grafana sends them.

Pluggable: the queries come from `tests/dashboard_queries.py` (`panel_queries`,
`substitute`, ...) when that module exists; without it, `load()` returns None and the benchmark
skips this step. Variables take the dashboards' defaults as Grafana applies them: "All" (the
variable's `allValue`, `.*`) where that is the default, else the first value Prometheus has;
built-ins as Grafana computes them for the dashboard's time range (`$__interval` from about
1,000 points, `$__rate_interval` = max(4 x scrape interval, interval + scrape interval)).
"""

from __future__ import annotations

import importlib.util
import sys
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from benchmarks.center.measure import api, percentiles
from benchmarks.center.processes import ROOT

QUERIES_MODULE = ROOT / "tests" / "dashboard_queries.py"
MAX_POINTS = 1000
STEPS = (5, 10, 15, 20, 30, 60, 120, 300, 600, 1800, 3600)  # Grafana-like rounding, seconds


def load() -> ModuleType | None:
    """tests/dashboard_queries.py as a module, or None where it does not exist (yet)."""
    if not QUERIES_MODULE.exists():
        return None
    spec = importlib.util.spec_from_file_location("dashboard_queries", QUERIES_MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("dashboard_queries", module)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Timing:
    range_s: float
    step_s: int
    rate_interval: str

    @staticmethod
    def for_range(range_s: float, scrape_s: float) -> Timing:
        wanted = max(range_s / MAX_POINTS, scrape_s)
        step = next((s for s in STEPS if s >= wanted), STEPS[-1])
        rate = max(4 * scrape_s, step + scrape_s)
        return Timing(range_s, step, f"{int(rate)}s")


@dataclass(frozen=True)
class Prepared:
    query: Any  # a dashboard_queries.PanelQuery
    promql: str


def board_range_s(dq: ModuleType, board: dict[str, Any]) -> float:
    text = str(board.get("time", {}).get("from", "now-6h")).removeprefix("now-")
    return float(dq.duration_seconds(text))


def variables(dq: ModuleType, board: dict[str, Any], label_values: LabelValues) -> dict[str, str]:
    """The dashboard's variables at their defaults, as Grafana resolves them."""
    resolved: dict[str, str] = {}
    for variable in board["templating"]["list"]:
        name, kind = variable["name"], variable["type"]
        current = variable.get("current", {}).get("value")
        if kind in ("textbox", "constant"):
            resolved[name] = str(variable["query"])
        elif kind == "query":
            if (
                variable.get("includeAll")
                and variable.get("allValue")
                and "$__all" in (current if isinstance(current, list) else [current])
            ):
                resolved[name] = str(variable["allValue"])
                continue
            selector, label = dq.label_values_query(dq.variable_query(variable))
            found = sorted(set(label_values(dq.substitute(selector, resolved, "1m", "1h"), label)))
            if not found:
                raise LookupError(f"variable {name!r} of {board['title']!r} has no values")
            resolved[name] = dq.format_values(found[:1])
    return resolved


LabelValues = Callable[[str, str], list[str]]


def prepare(dq: ModuleType, url: str, scrape_s: float) -> list[tuple[Prepared, Timing]]:
    """Every panel query of every dashboard, variables and built-ins substituted."""

    def label_values(selector: str, label: str) -> list[str]:
        found: list[str] = api(url, f"/api/v1/label/{label}/values", {"match[]": selector})
        return found

    out = []
    for board in dq.load_dashboards():
        timing = Timing.for_range(board_range_s(dq, board), scrape_s)
        resolved = variables(dq, board, label_values)
        for q in dq.queries_of(board):
            promql = dq.substitute(
                q.expr,
                resolved,
                timing.rate_interval,
                f"{int(timing.range_s)}s",
                f"{timing.step_s}s",
            )
            out.append((Prepared(q, promql), timing))
    return out


def run_once(url: str, prepared: Prepared, timing: Timing) -> tuple[float, int]:
    """(milliseconds, series returned) of one run of the query, as Grafana would send it."""
    now = time.time()
    began = time.perf_counter()
    if prepared.query.instant:
        data = api(url, "/api/v1/query", {"query": prepared.promql, "time": f"{now:.3f}"})
    else:
        params = {
            "query": prepared.promql,
            "start": f"{now - timing.range_s:.3f}",
            "end": f"{now:.3f}",
            "step": str(timing.step_s),
        }
        data = api(url, "/api/v1/query_range", params)
    return (time.perf_counter() - began) * 1000, len(data["result"])


def latencies(
    url: str, queries: list[tuple[Prepared, Timing]], repeats: int
) -> list[dict[str, Any]]:
    """Per panel query: p50/p99/max ms over `repeats` runs and the series it returned."""
    rows = []
    for prepared, timing in queries:
        took, series, error = [], 0, ""
        for _ in range(repeats):
            try:
                ms, series = run_once(url, prepared, timing)
            except (RuntimeError, urllib.error.URLError, TimeoutError) as err:
                error = str(err)[:200]
                break
            took.append(ms)
        q = prepared.query
        rows.append(
            {"dashboard": q.dashboard, "panel": q.panel, "ref": q.ref_id, "instant": q.instant}
            | percentiles(took)
            | {"series": series, "error": error, "promql": prepared.promql}
        )
    return rows
