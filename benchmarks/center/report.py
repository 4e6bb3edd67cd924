"""docs/scale.md from a center benchmark's results, with the extrapolation to 10,000 nodes
(the sizing model and its assumptions: `benchmarks/center/sizing.py`).
"""

from __future__ import annotations

import math
from typing import Any

from benchmarks.center.formats import GIB, MIB, both, mib, ms, n, table
from benchmarks.center.processes import ROOT
from benchmarks.center.sizing import (
    BUDGET,
    HEAD_CHUNK_BYTES_PER_SERIES,
    SHARD_CORES,
    SHARD_MEMORY_GIB,
    TARGET_NODES,
    rule_seconds,
    sizing,
)

DOC = ROOT / "docs" / "scale.md"


def query_row(r: dict[str, Any]) -> tuple[object, ...]:
    return (r["dashboard"], r["panel"], r["ref"], f"{r['p50']:.1f}", f"{r['p99']:.1f}",
            r["series"], r["error"])  # fmt: skip


def _simulator(results: dict[str, Any]) -> list[str]:
    sim, prom = results["simulator"], results["prometheus"]
    usage = prom["usage"]["simulator"]
    cycles = prom.get("simulator_cycles", [])
    latency = prom.get("node_scrape_ms", {})
    rows = [
        ("startup (build every node, first sample)", f"{sim['startup_s']:.1f} s"),
        ("processes", sim.get("processes", "?")),
        ("resident memory, all processes", f"{usage['rss_peak_bytes'] / MIB:,.0f} MiB"),
        ("CPU while Prometheus scrapes it", f"{usage['cpu_cores']:.2f} cores"),
    ]
    if cycles:
        rows += [
            ("sampling cycle (every node once)", f"{max(c['cycle_s'] for c in cycles):.2f} s max"),
            ("sampling thread busy per cycle", f"{max(c['busy_s'] for c in cycles):.2f} s max"),
            ("latest a node was sampled", f"{max(c['max_lag_s'] for c in cycles):.2f} s"),
            ("cycles behind (>10% over)", f"{sum(c['behind'] for c in cycles):.0f}"),
        ]
    if latency:
        rows.append(
            (
                "one node's scrape under load (client: OpenMetrics, gzip, keep-alive)",
                f"p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms, "
                f"{latency['gzip_bytes'] / 1024:.1f} KiB gzip "
                f"of {latency['plain_bytes'] / 1024:.0f} KiB",
            )
        )
    return table(("measure", "value"), rows)


def _prometheus(results: dict[str, Any]) -> list[str]:
    prom, nodes = results["prometheus"], results["nodes"]
    usage = prom["usage"]["prometheus"]
    rows = [
        ("targets up", f"{prom['targets_up']:.0f} of {nodes}"),
        ("active series (prometheus_tsdb_head_series)", n(prom["head_series"])),
        ("of which scraped", n(prom["scrape_samples"])),
        ("series per node", n(prom["head_series"] / nodes)),
        ("samples/s ingested (scrapes + rules)", n(prom["samples_per_s"])),
        ("resident memory (end / peak)", both(usage["rss_bytes"], usage["rss_peak_bytes"])),
        ("bytes per active series", n(usage["rss_peak_bytes"] / prom["head_series"])),
        ("CPU", f"{usage['cpu_cores']:.2f} cores"),
        ("scrape duration p50 / p99", ms(prom["scrape_duration_p50_s"], prom["scrape_p99_s"])),
        ("rule evaluations missed", n(prom["rule_evaluations_missed"])),
        ("TSDB on disk after the run (WAL)", f"{prom['tsdb_disk_bytes'] / MIB:,.0f} MiB"),
    ]  # fmt: skip
    out = table(("measure", "value"), rows)
    means, maxes = prom.get("rule_groups_mean_s", {}), prom.get("rule_groups_max_s", {})
    groups = [
        (g, f"{means.get(g, v):.3f}", f"{maxes.get(g, v):.3f}")
        for g, v in sorted(prom["rule_groups_last_s"].items())
    ]
    out += ["", *table(("rule group", "evaluation, mean s", "max s"), groups)]
    rules = prom.get("rules", {})
    empty = [name for name, count in rules.items() if not count]
    out += ["", f"Recording rules returning data: {len(rules) - len(empty)} of {len(rules)}."]
    if empty:
        out.append("Without data: " + ", ".join(f"`{e}`" for e in empty) + ".")
    return out


def _victoria(results: dict[str, Any]) -> list[str]:
    vm = results.get("victoria")
    if not vm:
        return ["Not run."]
    vmu, agent = vm["usage"]["victoria-metrics"], vm["usage"]["vmagent"]
    per_row = vm["data_size_bytes"] / vm["rows_stored"] if vm["rows_stored"] else 0.0
    rows = [
        ("rows/s ingested", n(vm["rows_per_s"])),
        ("active series (this hour)", n(vm["active_series"])),
        ("VictoriaMetrics memory (end / peak)", both(vmu["rss_bytes"], vmu["rss_peak_bytes"])),
        ("VictoriaMetrics CPU", f"{vmu['cpu_cores']:.2f} cores"),
        ("vmagent resident memory (peak)", f"{agent['rss_peak_bytes'] / MIB:,.0f} MiB"),
        ("vmagent CPU", f"{agent['cpu_cores']:.2f} cores"),
        ("rows stored", n(vm["rows_stored"])),
        ("data parts", f"{vm['data_size_bytes'] / MIB:,.1f} MiB"),
        ("index", f"{vm['index_size_bytes'] / MIB:,.1f} MiB"),
        ("bytes per sample (data parts, after minutes)", f"{per_row:.2f}"),
        ("storage folder on disk", f"{vm['disk_bytes'] / MIB:,.1f} MiB"),
    ]  # fmt: skip
    return table(("measure", "value"), rows)


def _panels(results: dict[str, Any]) -> list[str]:
    found = results["prometheus"].get("panels", {})
    if "skipped" in found or not found:
        return [f"Skipped: {found.get('skipped', 'not run')}."]
    rows = found["queries"]
    out = [
        f"{len(rows)} panel queries of {len({r['dashboard'] for r in rows})} dashboards, each run "
        f"{found['repeats']} times as Grafana sends it (the dashboard's default range, variables "
        f"at their defaults: All, or the first node), one after another.",
        "",
    ]
    by_board: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_board.setdefault(r["dashboard"], []).append(r)
    summary = [
        (b, len(rs), f"{sorted(r['p50'] for r in rs)[len(rs) // 2]:.1f}",
         f"{max(r['p99'] for r in rs):.1f}", sum(1 for r in rs if not r["series"] or r["error"]))
        for b, rs in sorted(by_board.items())
    ]  # fmt: skip
    out += table(
        ("dashboard", "queries", "median p50, ms", "max p99, ms", "empty or failed"), summary
    )
    slow = sorted(rows, key=lambda r: -r["p99"])[:15]
    out += ["", "Slowest 15:", ""]
    out += table(
        ("dashboard", "panel", "ref", "p50 ms", "p99 ms", "series"),
        (query_row(r)[:-1] for r in slow),
    )  # fmt: skip
    out += ["", "<details><summary>Every panel query</summary>", ""]
    out += table(
        ("dashboard", "panel", "ref", "p50 ms", "p99 ms", "series", "error"),
        (query_row(r) for r in rows),
    )  # fmt: skip
    return [*out, "", "</details>"]


def _extrapolation(results: dict[str, Any]) -> list[str]:
    size, interval = sizing(results), results["interval_s"]
    per = size["per_node"]
    limits = ", ".join(f"{k} {v:,.0f}" for k, v in size["limits"].items())
    storage = size["storage"]
    rows = [
        ("series per node", n(per["series"])),
        ("samples/s per node", n(per["samples_per_s"], 1)),
        ("Prometheus memory per node, measured", f"{per['rss_bytes'] / MIB:.2f} MiB"),
        ("Prometheus memory per node, steady state (estimate)", mib(size["steady_bytes_per_node"])),
        ("Prometheus CPU per 1,000 nodes", f"{per['cores'] * 1000:.2f} cores"),
        ("slowest rule group per 1,000 nodes", f"{per['rule_group_s'] * 1000:.2f} s"),
        (f"series at {TARGET_NODES:,} nodes", n(per["series"] * TARGET_NODES)),
        (f"samples/s at {TARGET_NODES:,} nodes", n(per["samples_per_s"] * TARGET_NODES)),
        ("nodes per shard allowed by", limits),
        ("shards needed", f"{size['shards']} ({size['nodes_per_shard']:,} nodes each)"),
        ("memory per shard (steady state)", f"{size['shard_memory_bytes'] / GIB:.1f} GiB"),
        ("Prometheus CPU per shard", f"{size['shard_cores']:.1f} cores"),
        ("slowest rule group per shard", f"{size['shard_rule_group_s']:.1f} s of {interval:.0f} s"),
        ("samples per day to remote storage", n(storage["samples_per_day"])),
    ]  # fmt: skip
    if "bytes_per_day" in storage:
        rows += [
            ("remote storage per day: samples (VictoriaMetrics, bytes/sample as measured)",
             f"{storage['bytes_per_day'] / GIB:,.1f} GiB "
             f"({storage['bytes_per_sample']:.2f} B/sample)"),
            ("remote storage per day: index (one per day, bytes/series as measured)",
             f"{storage['index_bytes_per_day'] / GIB:,.1f} GiB "
             f"({storage['index_bytes_per_series']:.0f} B/series)"),
        ]  # fmt: skip
    return [*table(("", "value"), rows), "", _binding(size, results)]


def _binding(size: dict[str, Any], results: dict[str, Any]) -> str:
    limits = size["limits"]
    binding = min(limits, key=limits.get)
    others = {k: v for k, v in limits.items() if k != binding}
    without = math.ceil(TARGET_NODES / min(others.values()))
    text = f"The binding limit is {binding}: {size['shards']} shards; without it, {without}."
    if binding == "rule evaluation":
        group = max(rule_seconds(results["prometheus"]).items(), key=lambda kv: kv[1])[0]
        text += (
            f" Prometheus evaluates the rules of one group one after another (the five groups "
            f"run concurrently), so `{group}` takes the same time whatever the cores; splitting "
            "it further or making its selections cheaper lifts this limit."
        )
    return text


def document(results: dict[str, Any]) -> str:
    m = results["machine"]
    head = [
        "# Scale: a simulated center",
        "",
        f"Generated by `python -m benchmarks.center --nodes {results['nodes']} --minutes "
        f"{results['minutes']:g}` on {results['date']} (commit {results['commit']}); do not edit "
        "by hand. The simulator (`suanli-agent simulate`, [simulator.md](simulator.md)) serves "
        f"{results['simulator']['summary_fleet']}, sampled and scraped every "
        f"{results['interval_s']:g} s, on the same machine as the monitoring stack.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['kernel']}, Python "
        f"{m['python']}; Prometheus {results.get('versions', {}).get('prometheus', '?')}. "
        f"{results.get('note', '')}",
    ]
    sections = [
        ("The simulator", _simulator(results)),
        (
            "Prometheus: one shard holding every node, with the project's rules",
            _prometheus(results),
        ),
        ("vmagent and VictoriaMetrics (remote_write)", _victoria(results)),
        ("Dashboard panel queries", _panels(results)),
        (f"Extrapolation to {TARGET_NODES:,} nodes", _extrapolation(results) + _assumptions()),
    ]
    body = [line for title, lines in sections for line in ("", f"## {title}", "", *lines)]
    return "\n".join(head + body) + "\n"


def _assumptions() -> list[str]:
    return [
        "",
        f"Assumptions: a shard host has {SHARD_CORES} cores and {SHARD_MEMORY_GIB} GiB; "
        f"Prometheus may use {BUDGET:.0%} of each, and its slowest rule group (evaluated "
        f"sequentially, whatever the cores) {BUDGET:.0%} of the evaluation interval. Steady-state "
        f"memory adds {HEAD_CHUNK_BYTES_PER_SERIES} bytes per series for the 3 h of samples a "
        "head holds, which a run of minutes has not accumulated. VictoriaMetrics compresses "
        "further as it merges parts over hours: bytes per sample after minutes are an upper bound.",
    ]
