"""Every declared metric follows the contract's naming rules, and the README documents them all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.metrics import PREFIX, MetricSpec, unit_suffix_ok
from agent.reference import markdown, replaced, sections

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT.parent / "shared" / "design" / "metrics.md"
SPECS = [spec for _, specs in sections() for spec in specs]
# Counts and states with no unit, as the contract names them.
UNITLESS = {
    "suanli_nvml_function_disabled",
    "suanli_gpu_up",
    "suanli_gpu_delivered_flops_unavailable",
    "suanli_gpus",
    "suanli_kmsg_up",
    "suanli_gpu_performance_state",
    "suanli_gpu_clock_event_active",
    "suanli_gpu_pcie_link_generation",
    "suanli_gpu_pcie_link_width",
    "suanli_gpu_retired_pages",
    "suanli_gpu_remapped_rows",
    "suanli_gpu_row_remap_state",
    "suanli_gpu_recovery_action",
    "suanli_gpu_nvlink_links",
    "suanli_gpu_nvlink_up",
    "suanli_nvml_up",
    "suanli_cpus",
    "suanli_load1",
    "suanli_gpu_healthy",
    "suanli_gpu_processes",
    "suanli_config_last_reload_successful",
    "suanli_gpu_health_check_failed",
    "suanli_collector_success",
    "suanli_infiniband_port_up",
    "suanli_http_connections_open",
    "suanli_job_allocation_source_up",
    "suanli_gpu_kubelet_allocatable",
}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_names_follow_the_rules(spec: MetricSpec) -> None:
    assert spec.name.startswith(PREFIX)
    assert unit_suffix_ok(spec.name) or spec.name in UNITLESS, f"{spec.name}: no base unit suffix"
    if spec.name.startswith("suanli_gpu_") and spec.name != "suanli_gpu_info":
        assert spec.labels[:2] == ("gpu", "uuid")


def test_names_are_unique() -> None:
    names = [spec.name for spec in SPECS]
    assert len(names) == len(set(names))


def test_the_readme_reference_is_generated_from_the_declarations() -> None:
    readme = (ROOT / "README.md").read_text()
    assert replaced(readme) == readme, "run: python -m agent.reference --write README.md"
    for spec in SPECS:
        assert f"`{spec.name}`" in markdown()


@pytest.mark.skipif(
    not CONTRACT.exists(), reason="../shared/design/metrics.md not beside the checkout"
)
def test_every_declared_metric_is_in_the_contract() -> None:
    contract = CONTRACT.read_text()
    named = set(re.findall(r"`(suanli_[a-z0-9_]+)", contract))
    # the contract abbreviates families like `suanli_gpu_memory_used_bytes` / `_total_bytes`
    expanded = named | {
        "suanli_gpu_memory_total_bytes",
        "suanli_gpu_memory_reserved_bytes",
        "suanli_gpu_decoder_utilization_ratio",
        "suanli_gpu_pcie_link_width",
        "suanli_memory_available_bytes",
    }
    # "the GPM ratios above with the MIG labels": the same ratios under suanli_mig_
    expanded |= {n.replace("suanli_gpu_", "suanli_mig_") for n in named if n.endswith("_ratio")}
    known = expanded | set(DIVERGENCES) | set(ADDITIONS)
    # families the contract names by prefix: `suanli_infiniband_*`
    prefixes = tuple(re.findall(r"`(suanli_[a-z0-9_]+_)\*`", contract))
    missing = [s.name for s in SPECS if s.name not in known and not s.name.startswith(prefixes)]
    assert missing == []


# Metrics the contract does not have yet, each proposed as an addition.
ADDITIONS = {
    "suanli_nvml_function_disabled": "an NVML call whose probe child died, kept off (issue 20)",
    "suanli_config_last_reload_successful": "outcome of the last SIGHUP reload (issue 8)",
    "suanli_config_last_reload_success_timestamp_seconds": "when the config last loaded",
    "suanli_gpu_unresponsive_seconds": "how long a GPU has not answered, and why (issue 15)",
    "suanli_gpu_fabric_info": "NVSwitch fabric state, status and clique per GPU (issue 15)",
    "suanli_kmsg_up": "whether the kernel log is being read for XIDs and SXids (issue 15)",
    "suanli_gpu_bar1_used_bytes": "BAR1 in use: GPUDirect RDMA registrations fail when full",
    "suanli_gpu_bar1_total_bytes": "the size of the BAR1 window (docs/adding-a-metric.md)",
    "suanli_config_reloads_failed_total": "reloads refused, the running config kept (issue 18)",
    "suanli_http_connections_open": "HTTP connections open: near the cap means abuse (issue 18)",
    "suanli_http_connections_evicted_total": "idle/slow/capacity evictions (issue 18)",
    "suanli_http_requests_rejected_total": "malformed, oversized, unauthorized, throttled (18)",
    "suanli_gpu_delivered_flops_unavailable": "why a GPU has no delivered-work counter (issue 17)",
    "suanli_job_allocation_source_up": "kubelet/Slurm allocations read, or why not (issue 17)",
    "suanli_gpu_kubelet_allocatable": "the kubelet can give the GPU to pods (issue 17)",
}

# Names that differ from the contract on purpose, each proposed as a contract change.
DIVERGENCES = {
    # promtool lints a gauge ending in _count as a broken histogram/summary series.
    "suanli_cpus": "suanli_cpu_count",
}


@pytest.mark.skipif(
    not CONTRACT.exists(), reason="../shared/design/metrics.md not beside the checkout"
)
def test_divergences_are_still_needed() -> None:
    contract = CONTRACT.read_text()
    for ours, theirs in DIVERGENCES.items():
        assert f"`{theirs}`" in contract and f"`{ours}`" not in contract, (
            f"the contract now says {ours}: drop it from DIVERGENCES"
        )
