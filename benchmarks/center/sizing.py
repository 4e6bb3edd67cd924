"""The sizing model: a center benchmark's per-node figures projected to 10,000 nodes.

A shard host of SHARD_CORES cores and SHARD_MEMORY_GIB GiB; Prometheus may use half of each; the
rollup group, which Prometheus evaluates sequentially, may take half of the evaluation interval.
Memory per node is the measured resident memory per node plus the head chunks a steady-state head
holds (3 h of samples) that a run of minutes has not accumulated yet.
"""

from __future__ import annotations

import math
from typing import Any

from benchmarks.center.formats import GIB

TARGET_NODES = 10_000
SHARD_CORES, SHARD_MEMORY_GIB = 16, 64
BUDGET = 0.5  # of a shard's cores, memory, and the evaluation interval (rule groups)
HEAD_CHUNK_BYTES_PER_SERIES = 2048  # 3 h at 15 s, ~1.4 B/sample, x ~1.5 for Go's heap


def sizing(results: dict[str, Any]) -> dict[str, Any]:
    """Per-node figures and the 10,000-node projection."""
    nodes, prom = results["nodes"], results["prometheus"]
    interval = results["interval_s"]
    usage = prom["usage"]["prometheus"]
    per_node = {
        "series": prom["head_series"] / nodes,
        "samples_per_s": prom["samples_per_s"] / nodes,
        "cores": usage["cpu_cores"] / nodes,
        "rss_bytes": usage["rss_peak_bytes"] / nodes,
        "rule_group_s": max(rule_seconds(prom).values(), default=0.0) / nodes,
    }
    steady = per_node["rss_bytes"] + per_node["series"] * HEAD_CHUNK_BYTES_PER_SERIES
    limits = {
        "memory": BUDGET * SHARD_MEMORY_GIB * GIB / steady,
        "cpu": BUDGET * SHARD_CORES / max(per_node["cores"], 1e-12),
        "rule evaluation": BUDGET * interval / max(per_node["rule_group_s"], 1e-12),
    }
    shards = math.ceil(TARGET_NODES / min(limits.values()))
    per_shard = math.ceil(TARGET_NODES / shards)
    out = {"per_node": per_node, "steady_bytes_per_node": steady, "limits": limits}
    out |= {"shards": shards, "nodes_per_shard": per_shard}
    out["shard_memory_bytes"] = steady * per_shard
    out["shard_cores"] = per_node["cores"] * per_shard
    out["shard_rule_group_s"] = per_node["rule_group_s"] * per_shard
    out["storage"] = _storage(results, per_node["samples_per_s"])
    return out


def rule_seconds(prom: dict[str, Any]) -> dict[str, float]:
    """Each rule group's longest evaluation seen in the window (else its last)."""
    found: dict[str, float] = prom.get("rule_groups_max_s") or prom["rule_groups_last_s"]
    return found


def _storage(results: dict[str, Any], samples_per_node: float) -> dict[str, float]:
    """Samples, data bytes and (VictoriaMetrics keeps an index per day) index bytes a day."""
    vm = results.get("victoria")
    samples_day = samples_per_node * TARGET_NODES * 86_400
    if not vm or not vm.get("rows_stored") or not vm.get("active_series"):
        return {"samples_per_day": samples_day}
    per_row = vm["data_size_bytes"] / vm["rows_stored"]
    per_series = vm["index_size_bytes"] / vm["active_series"]
    series = vm["active_series"] / results["nodes"] * TARGET_NODES
    return {
        "samples_per_day": samples_day,
        "bytes_per_sample": per_row,
        "bytes_per_day": samples_day * per_row,
        "index_bytes_per_series": per_series,
        "index_bytes_per_day": series * per_series,
    }
