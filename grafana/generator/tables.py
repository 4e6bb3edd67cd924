"""The table panel: an instant table, one row per series, whose `instance` column links to the
node's detail dashboard."""

from __future__ import annotations

from grafana.generator.panels import NODE_UID, Json, Query, panel

NODE_URL = (
    f"/d/{NODE_UID}/suanli-node-and-gpu-detail?${{datasource:queryparam}}"
    "&var-instance=${__data.fields.instance}&${__url_time_range}"
)
HIDDEN_COLUMNS = ("Time", "__name__", "job")


def table(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    w: int = 12,
    h: int = 8,
    rename: dict[str, str] | None = None,
    hide: tuple[str, ...] = (),
    units: dict[str, str] | None = None,
) -> Json:
    """An instant table, one row per series; several queries are merged on their labels.

    `rename` names value columns (`Value`, or `Value #A`... with several queries), `units`
    gives a column (by its new name) its own unit. An `instance` column links to that node.
    """
    options = {
        "cellHeight": "sm",
        "footer": {"show": False, "reducer": ["sum"], "fields": ""},
        "showHeader": True,
    }
    out = panel("table", title, description, unit, queries, (w, h), options)
    for t in out["targets"]:
        t.update(format="table", instant=True, range=False)
    out["transformations"] = _transformations(len(queries), rename or {}, hide)
    out["fieldConfig"]["overrides"] = _overrides(units or {})
    return out


def _transformations(queries: int, rename: dict[str, str], hide: tuple[str, ...]) -> list[Json]:
    organize = {
        "excludeByName": {k: True for k in (*HIDDEN_COLUMNS, *hide)},
        "renameByName": rename,
        "indexByName": {},
    }
    # organize first: each query's frame loses __name__ (only some queries have one) and gets
    # its value column named, so that merge joins the frames' rows on the same labels
    merge: list[Json] = [{"id": "merge", "options": {}}] if queries > 1 else []
    return [{"id": "organize", "options": organize}, *merge]


def _overrides(units: dict[str, str]) -> list[Json]:
    """The `instance` column's link to the node, then each column's own unit."""
    link = {"targetBlank": False, "title": "Node and GPU detail", "url": NODE_URL}
    return [
        {
            "matcher": {"id": "byName", "options": "instance"},
            "properties": [{"id": "links", "value": [link]}],
        },
        *(
            {
                "matcher": {"id": "byName", "options": name},
                "properties": [{"id": "unit", "value": column_unit}],
            }
            for name, column_unit in units.items()
        ),
    ]
