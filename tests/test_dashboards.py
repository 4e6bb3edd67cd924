"""grafana/: the dashboards are the generator's output, provisionable, and their PromQL is sound.

- the committed JSON equals `python -m grafana.generator`'s output;
- every dashboard is provisionable Grafana JSON: uid, schema, unique panel ids on the grid,
  current panel types only, a description and a unit on every panel, `${datasource}` on every
  panel and target, links between the dashboards, the chained variables;
- every PromQL expression parses (`promtool check rules` on a file of them, variables
  substituted), rates use `$__rate_interval`;
- every metric a query selects is in the contract: the agent's declared metrics, the recording
  rules, or Prometheus's own `up`; center-level panels read rollups, not raw per-GPU series;
- the node dashboard charts every metric the agent declares;
- the provisioning files are well formed.

That the queries return data against real agents is tests/test_dashboards_live.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashboard_queries import (
    BUILTINS,
    DASHBOARDS_DIR,
    all_panels,
    label_values_query,
    load_dashboards,
    metric_names,
    panel_queries,
    queries_of,
    referenced_variables,
    substitute,
    variable_query,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.reference import sections
from grafana.generator.build import differences
from grafana.generator.node_other import GENERATED

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "deploy" / "prometheus" / "rules" / "suanli-recording.yml"
PROVISIONING = ROOT / "grafana" / "provisioning"
BOARDS = load_dashboards()
UIDS = {
    "suanli-center",
    "suanli-efficiency",
    "suanli-power",
    "suanli-health",
    "suanli-jobs",
    "suanli-node",
}
PANEL_TYPES = {"timeseries", "stat", "gauge", "heatmap", "table", "state-timeline", "bargauge"}
CHAIN = ("cluster", "hall", "rack", "instance", "gpu")
CONSTANTS = {"pue": 1.25, "carbon_intensity": 0.58, "green_share": 0.31}
AGENT_METRICS = {spec.name for _, specs in sections() for spec in specs}
RULES = {
    rule["record"]
    for group in yaml.safe_load(RECORDING.read_text())["groups"]
    for rule in group["rules"]
    if "record" in rule
}
PROMETHEUS_METRICS = {"up"}  # written by Prometheus for every target
# Per-node series (not per GPU) that center-level panels may read: an agent's own health.
PER_NODE = {"up", "suanli_collector_success", "suanli_collector_last_success_timestamp_seconds"}
PLACEHOLDERS = {
    **{name: "(a|b\\\\.c)" for name in CHAIN},
    **{name: str(value) for name, value in CONSTANTS.items()},
}


def by_uid(uid: str) -> dict[str, Any]:
    return next(b for b in BOARDS if b["uid"] == uid)


def variables_of(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board["templating"]["list"]}


ids = [b["uid"] for b in BOARDS]


def test_the_committed_dashboards_are_the_generators_output() -> None:
    assert differences() == [], "run: python -m grafana.generator"
    assert {b["uid"] for b in BOARDS} == UIDS


def test_the_generator_runs_as_a_module_and_checks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "grafana.generator", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("board", BOARDS, ids=ids)
def test_dashboard_is_provisionable(board: dict[str, Any]) -> None:
    path = DASHBOARDS_DIR / f"{board['uid']}.json"
    assert path.exists(), "file named after the uid"
    assert board["id"] is None, "provisioned dashboards get their id from Grafana"
    assert board["title"].startswith("Suanli / ") and board["description"]
    assert board["schemaVersion"] >= 36 and board["editable"] is True
    assert "suanli" in board["tags"]
    assert board["time"]["from"].startswith("now-") and board["refresh"]
    (link,) = board["links"]
    assert link["type"] == "dashboards" and link["tags"] == ["suanli"]
    assert link["includeVars"] and link["keepTime"]


@pytest.mark.parametrize("board", BOARDS, ids=ids)
def test_panels_have_unique_ids_and_fit_the_grid(board: dict[str, Any]) -> None:
    panels = all_panels(board)
    assert panels
    panel_ids = [p["id"] for p in panels]
    assert len(panel_ids) == len(set(panel_ids)), "duplicate panel ids"
    taken: set[tuple[int, int]] = set()
    for p in panels:
        pos = p["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, p["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells


@pytest.mark.parametrize("board", BOARDS, ids=ids)
def test_every_panel_is_current_described_united_and_on_the_datasource(
    board: dict[str, Any],
) -> None:
    for p in all_panels(board):
        title = p["title"]
        assert p["type"] in PANEL_TYPES, f"{title}: {p['type']}"
        assert len(p.get("description", "")) > 20, f"{title}: no description"
        assert p["fieldConfig"]["defaults"].get("unit"), f"{title}: no unit"
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        ref_ids = [t["refId"] for t in p["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)), title
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}" and t["expr"].strip(), title
        if p["type"] == "table":
            assert all(t["instant"] and t["format"] == "table" for t in p["targets"]), title


def test_every_panel_type_is_used() -> None:
    used = {p["type"] for b in BOARDS for p in all_panels(b)}
    assert used == PANEL_TYPES


@pytest.mark.parametrize("board", BOARDS, ids=ids)
def test_the_chained_variables(board: dict[str, Any]) -> None:
    variables = variables_of(board)
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    before: list[str] = []
    for name in CHAIN:
        variable = variables[name]
        assert variable["type"] == "query" and variable["refresh"] in (1, 2), name
        assert variable["datasource"]["uid"] == "${datasource}", name
        selector, label = label_values_query(variable_query(variable))
        assert label == name
        # each variable is narrowed by the one before it (gpu by instance alone)
        parents = ["instance"] if name == "gpu" else before
        assert {f"${p}" for p in parents} <= set(re.findall(r"\$\w+", selector)), name
        if variable["multi"]:
            assert variable["includeAll"] and variable["allValue"] == ".*", name
        before.append(name)
    names = [v["name"] for v in board["templating"]["list"]]
    assert names[: len(CHAIN) + 1] == ["datasource", *CHAIN], "variables in chain order"
    # the node view shows one node; the others any selection
    assert variables["instance"]["multi"] is (board["uid"] != "suanli-node")


def test_the_power_dashboard_has_editable_constants() -> None:
    variables = variables_of(by_uid("suanli-power"))
    for name, default in CONSTANTS.items():
        assert variables[name]["type"] in ("textbox", "constant")
        assert float(variables[name]["query"]) == default
        assert variables[name]["description"]
    exprs = " ".join(q.expr for q in queries_of(by_uid("suanli-power")))
    assert all(f"${name}" in exprs for name in CONSTANTS)


@pytest.mark.parametrize("board", BOARDS, ids=ids)
def test_queries_refer_only_to_defined_variables(board: dict[str, Any]) -> None:
    defined = set(variables_of(board)) | set(BUILTINS)
    for q in queries_of(board):
        unknown = referenced_variables(q.expr) - defined
        assert not unknown, f"{q.name}: {unknown}"


def test_rates_use_rate_interval_and_totals_the_range() -> None:
    windows = re.compile(r"\b(rate|irate|increase)\((?:[^()\[]|\([^()]*\))*\[([^\]]+)\]")
    for q in panel_queries():
        for function, window in windows.findall(q.expr):
            allowed = ("$__range",) if function == "increase" else ()
            assert window in ("$__rate_interval", *allowed), f"{q.name}: {function}[{window}]"


def test_table_rows_and_health_panels_link_to_the_node_view() -> None:
    for board in BOARDS:
        for p in all_panels(board):
            if p["type"] != "table":
                continue
            (override,) = (
                o for o in p["fieldConfig"]["overrides"] if o["matcher"]["options"] == "instance"
            )
            (link,) = override["properties"][0]["value"]
            assert link["url"].startswith("/d/suanli-node/"), p["title"]
            assert "var-instance=${__data.fields.instance}" in link["url"]
    health_links = [p for p in all_panels(by_uid("suanli-health")) if p["type"] == "table"]
    assert len(health_links) >= 3


def test_panel_links_lead_to_suanli_dashboards() -> None:
    linked = 0
    for board in BOARDS:
        for p in all_panels(board):
            for link in p.get("links", []):
                uid = re.match(r"/d/([\w-]+)", link["url"])
                assert uid and uid[1] in UIDS and "${__url_time_range}" in link["url"], link
                linked += 1
    assert linked >= 4


def _rules_file(tmp_path: Path) -> Path:
    """Every panel expression and variable selector as a recording rule, variables substituted."""
    rules = []
    for i, q in enumerate(panel_queries()):
        expr = substitute(q.expr, PLACEHOLDERS, "1m", "6h")
        rules.append({"record": f"panel_query_{i}", "expr": expr, "labels": {"panel": q.name}})
    for board in BOARDS:
        for v in board["templating"]["list"]:
            if v["type"] == "query":
                selector, _ = label_values_query(variable_query(v))
                rules.append(
                    {
                        "record": f"variable_{board['uid']}_{v['name']}".replace("-", "_"),
                        "expr": substitute(selector, PLACEHOLDERS, "1m", "6h"),
                    }
                )
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    return path


def test_every_promql_expression_parses(promtool: str, tmp_path: Path) -> None:
    path = _rules_file(tmp_path)
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(panel_queries()) + 5 * len(BOARDS)} rules found" in result.stdout


def test_every_metric_used_is_in_the_contract() -> None:
    known = AGENT_METRICS | RULES | PROMETHEUS_METRICS
    used: set[str] = set()
    for q in panel_queries():
        names = metric_names(substitute(q.expr, PLACEHOLDERS, "1m", "6h"))
        assert names, f"{q.name}: selects no metric"
        assert names <= known, f"{q.name}: not in the contract: {names - known}"
        used |= names
    for board in BOARDS:
        for v in board["templating"]["list"]:
            if v["type"] == "query":
                assert metric_names(label_values_query(variable_query(v))[0]) <= known


def test_center_level_panels_read_rollups_not_raw_gpu_series() -> None:
    """Issue 9: only per-GPU tables may read raw per-GPU series outside the node view."""
    for q in panel_queries():
        if q.uid == "suanli-node" or q.panel_type == "table":
            continue
        raw = metric_names(q.expr) - RULES - PER_NODE
        assert not raw, f"{q.name} reads raw series {raw}: use (or add) a recording rule"


def test_the_node_dashboard_charts_every_metric_of_the_agent() -> None:
    charted = set().union(*(metric_names(q.expr) for q in queries_of(by_uid("suanli-node"))))
    assert AGENT_METRICS - charted == set()


def test_the_provisioning_files() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "suanli.yaml").read_text())
    (source,) = datasources["datasources"]
    assert datasources["apiVersion"] == 1 and source["type"] == "prometheus"
    assert source["url"].startswith("http") and source["jsonData"]["timeInterval"] == "15s"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "suanli.yaml").read_text())
    (provider,) = providers["providers"]
    assert providers["apiVersion"] == 1 and provider["type"] == "file"
    assert provider["options"]["path"] and provider["folder"] == "Suanli"


def test_the_documentation_names_every_dashboard_and_panel() -> None:
    """Panels made from the declarations (`GPU metric: <family>`) are documented as one rule."""
    doc = (ROOT / "docs" / "dashboards.md").read_text()
    assert f"`{GENERATED}<family>`" in doc
    for board in BOARDS:
        assert f"`{board['uid']}`" in doc
        missing = [
            p["title"]
            for p in all_panels(board)
            if f"| {p['title']} |" not in doc and not p["title"].startswith(GENERATED)
        ]
        assert not missing, f"docs/dashboards.md lacks panels of {board['uid']}: {missing}"
