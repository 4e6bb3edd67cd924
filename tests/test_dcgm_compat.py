"""dcgm-exporter-compatible names (`--dcgm-compat`): the mapping's units, labels and types on a
simulated node, and a dashboard written for dcgm-exporter answered by a real Prometheus.

The live test skips without Prometheus, and fails under SUANLI_REQUIRE_PROMETHEUS=1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from agent.collectors.health import XID_ERRORS
from agent.collectors.jobs import JOB_INFO
from agent.collectors.mig import MIG_INFO
from agent.config import ConfigError, from_mapping
from agent.dcgm_compat import DcgmCompat
from agent.dcgm_table import GPU_LABELS, MIG_LABELS, SPECS, TABLE
from agent.exposition import Renderer, families
from agent.exposition_format import OPENMETRICS, encode
from agent.metrics import MetricSpec, Sample
from agent.sampler import CollectorResult, Snapshot
from tests.dashboard_queries import queries_of, resolve_variables, substitute
from tests.gpu_helpers import node

if TYPE_CHECKING:
    from conftest import AgentProcess, PrometheusServer

FIXTURE = Path(__file__).parent / "fixtures" / "dcgm-exporter-style-dashboard.json"
HOST = "gpu-node-a"
# dcgm-exporter's default counters file (etc/default-counters.csv) and its DCP section
DEFAULT_SET = {
    "DCGM_FI_DEV_GPU_UTIL": "gauge",
    "DCGM_FI_DEV_MEM_COPY_UTIL": "gauge",
    "DCGM_FI_DEV_FB_USED": "gauge",
    "DCGM_FI_DEV_FB_FREE": "gauge",
    "DCGM_FI_DEV_POWER_USAGE": "gauge",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "counter",
    "DCGM_FI_DEV_GPU_TEMP": "gauge",
    "DCGM_FI_DEV_MEMORY_TEMP": "gauge",
    "DCGM_FI_DEV_SM_CLOCK": "gauge",
    "DCGM_FI_DEV_MEM_CLOCK": "gauge",
    "DCGM_FI_DEV_XID_ERRORS": "gauge",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": "counter",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": "gauge",
    "DCGM_FI_PROF_SM_ACTIVE": "gauge",
    "DCGM_FI_PROF_SM_OCCUPANCY": "gauge",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": "gauge",
    "DCGM_FI_PROF_DRAM_ACTIVE": "gauge",
}

Values = dict[str, dict[tuple[str, ...], float]]  # DCGM name -> label values -> value
Native = dict[tuple[str, tuple[str, ...]], float]


def _sampled(
    scenario: str, extra: list[Sample] | None = None
) -> tuple[Native, Values, list[Sample]]:
    gpus = node(scenario, xid_events=False)
    gpus.at(0.0)
    gpus.clock.t = 120.0  # GPM activity: two samples a known interval apart
    native = gpus.collector.collect() + (extra or [])
    derived = DcgmCompat(HOST).samples(native)
    values: Values = {}
    for sample in derived:
        values.setdefault(sample.spec.name, {})[sample.labels] = sample.value
    return {(s.spec.name, s.labels): s.value for s in native}, values, derived


def _gpu(native: Native, name: str, index: str, *extra: str) -> float:
    key = (name, (index,), extra)
    found = [v for (n, labels), v in native.items() if (n, labels[:1], labels[2:]) == key]
    assert len(found) == 1, (name, index, extra)
    return found[0]


def _uuid(scenario: str, index: str) -> str:
    native, _, _ = _sampled(scenario)
    return next(labels[1] for (n, labels) in native if n == "suanli_gpu_up" and labels[0] == index)


def _of_gpu(values: Values, name: str, index: str) -> float:
    found = [v for labels, v in values[name].items() if labels[0] == index]
    assert len(found) == 1, (name, index, values[name])
    return found[0]


def test_the_default_counter_set_is_mapped_with_dcgm_exporters_types() -> None:
    kinds = {spec.name: spec.kind for spec in SPECS}
    assert {name: kinds.get(name) for name in DEFAULT_SET} == DEFAULT_SET
    assert len(kinds) == len(TABLE)  # one row per name


def test_units_are_dcgm_exporters() -> None:
    native, values, _ = _sampled("h100-8")
    mib, g = 2.0**20, "3"
    assert (
        _of_gpu(values, "DCGM_FI_DEV_FB_USED", g)
        == _gpu(native, "suanli_gpu_memory_used_bytes", g) / mib
    )
    free = (
        _gpu(native, "suanli_gpu_memory_total_bytes", g)
        - _gpu(native, "suanli_gpu_memory_used_bytes", g)
        - _gpu(native, "suanli_gpu_memory_reserved_bytes", g)
    )
    assert _of_gpu(values, "DCGM_FI_DEV_FB_FREE", g) == pytest.approx(free / mib)
    assert _of_gpu(values, "DCGM_FI_DEV_POWER_USAGE", g) == _gpu(
        native, "suanli_gpu_power_watts", g
    )
    energy = _gpu(native, "suanli_gpu_energy_joules_total", g)
    assert _of_gpu(values, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", g) == pytest.approx(
        energy * 1000
    )
    sm_hz = _gpu(native, "suanli_gpu_clock_hertz", g, "sm")
    assert _of_gpu(values, "DCGM_FI_DEV_SM_CLOCK", g) == pytest.approx(sm_hz / 1e6)
    temp = _gpu(native, "suanli_gpu_temperature_celsius", g, "memory")
    assert _of_gpu(values, "DCGM_FI_DEV_MEMORY_TEMP", g) == temp
    util = _gpu(native, "suanli_gpu_utilization_ratio", g)
    assert _of_gpu(values, "DCGM_FI_DEV_GPU_UTIL", g) == pytest.approx(util * 100)
    tensor = _gpu(native, "suanli_gpu_tensor_active_ratio", g)
    assert _of_gpu(values, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", g) == tensor  # PROF_: 0..1
    assert all(0 <= v <= 1 for v in values["DCGM_FI_PROF_SM_ACTIVE"].values())
    assert all(v > 1 for v in values["DCGM_FI_DEV_SM_CLOCK"].values())  # MHz, not GHz


def test_labels_are_dcgm_exporters_and_a_pod_is_named() -> None:
    uuid = _uuid("h100-8", "2")
    pod = Sample(JOB_INFO, ("2", uuid, "kubernetes", "j", "", "ml", "train-0", "main"), 1.0)
    _, values, derived = _sampled("h100-8", [pod])
    assert all(s.spec.labels[: len(GPU_LABELS)] == GPU_LABELS for s in derived)
    power = {
        labels[0]: dict(zip(GPU_LABELS, labels, strict=True))
        for labels in values["DCGM_FI_DEV_POWER_USAGE"]
    }
    assert sorted(power) == [str(i) for i in range(8)]
    two = power["2"]
    assert two["UUID"] == uuid and two["device"] == "nvidia2" and two["Hostname"] == HOST
    assert two["modelName"] == "NVIDIA H100 80GB HBM3" and two["pci_bus_id"].startswith("0000")
    assert two["DCGM_FI_DRIVER_VERSION"]
    assert (two["namespace"], two["pod"], two["container"]) == ("ml", "train-0", "main")
    assert (power["3"]["namespace"], power["3"]["pod"]) == ("", "")


def test_mig_instances_replace_their_gpus_series_and_carry_gpu_i_labels() -> None:
    native, values, _ = _sampled("h100-mig")
    instances = {
        (labels[0], labels[2]): labels[4]
        for (name, labels), _ in native.items()
        if name == MIG_INFO.name
    }
    used = values["DCGM_FI_DEV_FB_USED"]
    mig_series = {(labels[0], labels[-2]): labels[-1] for labels in used if labels[-2]}
    assert mig_series == instances  # GPU_I_ID, GPU_I_PROFILE of every instance
    mig_gpus = {gpu for gpu, _ in instances}
    whole = {labels[0] for labels in used if not labels[-2]}
    assert whole and not whole & mig_gpus  # never a MIG GPU's own series beside its instances
    total = sum(v for labels, v in used.items() if labels[0] == "0")
    native_total = sum(
        v
        for (n, labels), v in native.items()
        if n == "suanli_mig_memory_used_bytes" and labels[0] == "0"
    )
    assert total == pytest.approx(native_total / 2**20)
    assert "GPU_I_ID" not in SPECS[0].labels and MIG_LABELS == ("GPU_I_ID", "GPU_I_PROFILE")
    # device-level values stay per GPU
    assert sorted(labels[0] for labels in values["DCGM_FI_DEV_POWER_USAGE"]) == [
        str(i) for i in range(8)
    ]


def test_xid_errors_is_the_highest_code_counted_and_0_without_any() -> None:
    uuid = _uuid("h100-8", "1")
    xids = [
        Sample(XID_ERRORS, ("1", uuid, "13", "restart app"), 4.0),
        Sample(XID_ERRORS, ("1", uuid, "79", "reset"), 1.0),
    ]
    _, values, _ = _sampled("h100-8", xids)
    assert _of_gpu(values, "DCGM_FI_DEV_XID_ERRORS", "1") == 79.0
    assert _of_gpu(values, "DCGM_FI_DEV_XID_ERRORS", "0") == 0.0


class _Counting:
    """DcgmCompat, counting its derivations."""

    def __init__(self) -> None:
        self.inner, self.calls = DcgmCompat(HOST), 0

    @property
    def specs(self) -> Sequence[MetricSpec]:
        return self.inner.specs

    def samples(self, native: Iterable[Sample]) -> list[Sample]:
        self.calls += 1
        return self.inner.samples(native)


def test_renderer_adds_the_series_once_a_snapshot_and_default_output_is_unchanged() -> None:
    gpus = node("h100-8", xid_events=False)
    samples = tuple(gpus.collector.collect())
    snapshot = Snapshot(1, 0.0, (CollectorResult("gpu", samples, True, 0.1, 0.0),))
    plain = Renderer(gpus.collector.specs()).render(snapshot)[0]
    counting = _Counting()
    renderer = Renderer(gpus.collector.specs(), counting)
    body = renderer.render(snapshot)[0]
    renderer.render(snapshot, "application/openmetrics-text; version=1.0.0")
    renderer.render(snapshot, gzipped=True)
    assert counting.calls == 1
    assert b"DCGM_FI_DEV_GPU_TEMP{" in body and b"DCGM_FI" not in plain
    assert body.startswith(plain.split(b"# HELP suanli_agent_build_info")[0])


def test_openmetrics_types_a_counter_without_total_unknown() -> None:
    _, _, derived = _sampled("h100-8")
    text = encode(OPENMETRICS, families(SPECS, derived)).decode()
    assert "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION unknown" in text
    assert "# TYPE DCGM_FI_DEV_GPU_TEMP gauge" in text


def test_config_key_is_strict() -> None:
    assert from_mapping({"exposition": {"dcgm_compat": True}}).exposition.dcgm_compat
    with pytest.raises(ConfigError, match=r"exposition.dcgm_compat: must be true or false"):
        from_mapping({"exposition": {"dcgm_compat": "yes"}})
    with pytest.raises(
        ConfigError, match=r'exposition.dcgm_compt: unknown key; did you mean "dcgm_compat"'
    ):
        from_mapping({"exposition": {"dcgm_compt": True}})


# --- a dashboard written for dcgm-exporter, on a real Prometheus ------------------------------


def _has_data(prom: PrometheusServer, promql: str, instant: bool) -> bool:
    if instant:
        return bool(prom.query(promql))
    now = time.time()
    params = {"query": promql, "start": str(now - 30), "end": str(now), "step": "2"}
    return bool(prom.api("/api/v1/query_range", params)["result"])


def test_a_dcgm_exporter_dashboard_gets_data_from_the_agent(
    agent_process: Callable[..., AgentProcess],
    prometheus_server: Callable[..., PrometheusServer],
) -> None:
    agent = agent_process("--fake", "h100-8", "--dcgm-compat", "--interval", "1s")
    prom = prometheus_server([agent.address])
    prom.wait_for("DCGM_FI_PROF_SM_ACTIVE", timeout=30)
    prom.wait_for("rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5s]) > 0", timeout=30)
    board = json.loads(FIXTURE.read_text(encoding="utf-8"))

    def label_values(selector: str, label: str) -> list[str]:
        found: list[str] = prom.api(f"/api/v1/label/{label}/values", {"match[]": selector})
        return found

    variables = resolve_variables(board, label_values)
    pending = [(q, substitute(q.expr, variables, "5s", "5m")) for q in queries_of(board)]
    assert len(pending) >= 20
    deadline = time.monotonic() + 30.0
    while pending and time.monotonic() < deadline:
        pending = [(q, e) for q, e in pending if not _has_data(prom, e, q.instant)]
        if pending:
            time.sleep(1.0)
    assert not pending, "\n".join(f"{q.panel}: {e}" for q, e in pending)
