"""XIDs counted exactly, true activity from GPM matching the workload, MIG instances per series."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agent.hw.nvml import GPM_METRICS
from suanli_sim.binding import pynvml
from suanli_sim.cabi.nvml import CAbiNvml
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import load_scenario
from tests.gpu_helpers import Series, SimClock, by_gpu, keyed, node


def xids(series: Series) -> dict[tuple[str, str], float]:
    return {
        (labels[0], labels[2]): v
        for (n, labels), v in series.items()
        if n == "suanli_gpu_xid_errors_total"
    }


def check(series: Series, gpu: str, name: str) -> float:
    return next(
        v
        for (n, labels), v in series.items()
        if n == "suanli_gpu_health_check_failed" and labels[0] == gpu and labels[2] == name
    )


def test_a_burst_of_1000_xids_is_counted_exactly_and_only_critical_ones_fail_the_gpu() -> None:
    gpus = node("xid-storm")
    gpus.at(0.0)
    gpus.clock.t = 20.0
    gpus.wait_for_xids(1001)
    time.sleep(0.2)  # anything extra would arrive now
    series = gpus.at(20.0)
    assert xids(series) == {("0", "13"): 1000.0, ("5", "95"): 1.0}
    assert check(series, "0", "xid_critical") == 0.0, "XID 13 follows the job, not the GPU"
    assert check(series, "5", "xid_critical") == 1.0, "XID 95: reset the GPU"


def test_the_xid_of_a_gpu_falling_off_the_bus_is_counted_and_kept() -> None:
    gpus = node("mixed-faults")
    gpus.at(0.0)
    gpus.clock.t = 100.0
    gpus.wait_for_xids(2)
    series = gpus.at(100.0)
    lost = by_gpu(series, "suanli_gpu_up")
    assert lost["3"] == 0.0
    assert xids(series)[("3", "79")] == 1.0
    assert check(series, "3", "lost") == 1.0 and check(series, "3", "xid_critical") == 1.0


def test_a_critical_xid_stops_failing_the_gpu_after_the_window() -> None:
    gpus = node(
        """
name: one-xid
gpus: {model: H100-SXM5-80GB, count: 2, workload: training}
faults:
  - {kind: xid, gpu: 1, at: 1, code: 48}
"""
    )
    gpus.at(0.0)
    gpus.clock.t = 2.0
    gpus.wait_for_xids(1)
    assert check(gpus.at(2.0), "1", "xid_critical") == 1.0
    gpus.health.checker._clock = lambda: time.time() + 3601.0  # an hour later
    later = gpus.at(3.0)
    assert check(later, "1", "xid_critical") == 0.0
    assert xids(later)[("1", "48")] == 1.0, "the counter itself never goes back"


def test_a_gpu_that_cannot_register_for_events_is_skipped_and_the_others_listen() -> None:
    gpus = node(
        """
name: partial-events
gpus: {model: H100-SXM5-80GB, count: 3, workload: training}
faults:
  - {kind: events_unsupported, gpu: 1}
  - {kind: xid, gpus: [0, 2], at: 1, code: 63}
"""
    )
    gpus.at(0.0)
    assert gpus.backend.xid.registered == {0, 2}
    gpus.clock.t = 2.0
    gpus.wait_for_xids(2)
    assert xids(gpus.at(2.0)) == {("0", "63"): 1.0, ("2", "63"): 1.0}


def test_the_listener_restarts_after_nvml_comes_back() -> None:
    gpus = node(
        """
name: flapping-driver
gpus: {model: H100-SXM5-80GB, count: 2, workload: training}
faults:
  - {kind: xid, gpu: 0, at: 1, code: 79}
  - {kind: xid, gpu: 1, at: 50, code: 48}
"""
    )
    gpus.at(0.0)
    gpus.clock.t = 2.0
    gpus.wait_for_xids(1)
    gpus.gateway.shutdown()  # the driver went away and came back: NVML re-initialises
    gpus.at(20.0)
    gpus.clock.t = 60.0
    gpus.wait_for_xids(2)
    assert xids(gpus.at(60.0)) == {("0", "79"): 1.0, ("1", "48"): 1.0}


GPM_IDS = {  # the agent's ratio -> the NVML GPM metric it comes from
    "sm_active": pynvml.NVML_GPM_METRIC_SM_UTIL,
    "sm_occupancy": pynvml.NVML_GPM_METRIC_SM_OCCUPANCY,
    "tensor_active": pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL,
    "dram_active": pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL,
    "graphics_engine_active": pynvml.NVML_GPM_METRIC_GRAPHICS_UTIL,
    "fp64": pynvml.NVML_GPM_METRIC_FP64_UTIL,
    "fp32": pynvml.NVML_GPM_METRIC_FP32_UTIL,
    "fp16": pynvml.NVML_GPM_METRIC_FP16_UTIL,
}


def nvml_gpm_percent(
    scenario: str, gpu: int, t1: float, t2: float, gi: int | None = None
) -> dict[str, float]:
    """What NVML answers (percent) for GPM samples at t1 and t2, read by this test through the
    pynvml calls on its own fake NVML of the same scenario (NVIDIA's binding over the fake C
    library); not through the agent."""
    clock = SimClock(t1)
    nv = CAbiNvml(FakeNvml(load_scenario(scenario), clock=clock))
    nv.nvmlInit()
    handle = nv.nvmlDeviceGetHandleByIndex(gpu)

    def take() -> Any:
        if gi is None:
            return nv.nvmlGpmSampleGet(handle, nv.nvmlGpmSampleAlloc())
        return nv.nvmlGpmMigSampleGet(handle, gi, nv.nvmlGpmSampleAlloc())

    request = pynvml.c_nvmlGpmMetricsGet_t()
    request.version = pynvml.NVML_GPM_METRICS_GET_VERSION
    request.numMetrics = len(GPM_IDS)
    request.sample1 = take()
    clock.t = t2
    request.sample2 = take()
    for slot, metric in enumerate(GPM_IDS.values()):
        request.metrics[slot].metricId = metric
    answer = nv.nvmlGpmMetricsGet(request)
    return {name: answer.metrics[i].value for i, name in enumerate(GPM_IDS)}


@pytest.mark.parametrize("scenario", ["h100-8", "h800-8", "h20-8"])
def test_gpm_activity_is_nvml_s_percentage_as_a_ratio(scenario: str) -> None:
    """NVML answers GPM metrics in percent; the agent exports ratios: ours = NVML's / 100."""
    gpus = node(scenario, detail=True, xid_events=False)
    gpus.at(100.0)
    series = gpus.at(105.0)
    for gpu in range(8):
        nvml = nvml_gpm_percent(scenario, gpu, 100.0, 105.0)
        for ours in ("sm_active", "sm_occupancy", "tensor_active", "dram_active"):
            value = by_gpu(series, f"suanli_gpu_{ours}_ratio")[str(gpu)]
            assert value == pytest.approx(nvml[ours] / 100, abs=1e-9), (ours, gpu)
        graphics = by_gpu(series, "suanli_gpu_graphics_engine_active_ratio")[str(gpu)]
        assert graphics == pytest.approx(nvml["graphics_engine_active"] / 100, abs=1e-9)
        pipes = keyed(series, "suanli_gpu_pipe_active_ratio")[str(gpu)]
        assert pipes == pytest.approx({p: nvml[p] / 100 for p in ("fp64", "fp32", "fp16")})
    assert 0 < by_gpu(series, "suanli_gpu_sm_active_ratio")["0"] <= 1


def test_training_on_h100_shows_real_work_below_what_utilization_claims() -> None:
    gpus = node("h100-8", xid_events=False)
    gpus.at(100.0)
    series = gpus.at(110.0)
    busy = [g for g, u in by_gpu(series, "suanli_gpu_utilization_ratio").items() if u > 0.5]
    assert len(busy) >= 6
    for gpu in busy:
        utilization = by_gpu(series, "suanli_gpu_utilization_ratio")[gpu]
        sm = by_gpu(series, "suanli_gpu_sm_active_ratio")[gpu]
        tensor = by_gpu(series, "suanli_gpu_tensor_active_ratio")[gpu]
        assert 0.1 < tensor < sm <= utilization + 0.01


def test_activity_is_absent_where_gpm_is_unsupported_and_on_the_first_sample() -> None:
    first = node("h100-8", xid_events=False).at(10.0)
    assert by_gpu(first, "suanli_gpu_sm_active_ratio") == {}, "GPM needs two samples"
    ampere = node("l40s-4", xid_events=False)
    ampere.at(10.0)
    assert by_gpu(ampere.at(20.0), "suanli_gpu_sm_active_ratio") == {}


def test_peak_flops_come_from_the_model_table_and_are_absent_for_unknown_precisions() -> None:
    series = node("l40s-4", detail=True, xid_events=False).at(10.0)
    peaks = keyed(series, "suanli_gpu_peak_flops")["0"]
    assert peaks == {"fp32": 91.6e12, "tf32": 183e12, "bf16": 362e12, "fp8": 733e12}
    by_default = node("l40s-4", xid_events=False).at(10.0)
    assert keyed(by_default, "suanli_gpu_peak_flops")["0"] == {"bf16": 362e12}


def mig_series(series: Series, name: str) -> dict[tuple[str, str, str], float]:
    return {(lab[0], lab[2], lab[3]): v for (n, lab), v in series.items() if n == name}


def test_mig_gives_one_series_per_instance_and_keeps_device_values_on_the_gpu() -> None:
    gpus = node("h100-mig", xid_events=False)
    gpus.at(0.0)
    series = gpus.at(30.0)
    info = {(n, lab) for (n, lab) in series if n == "suanli_mig_info"}
    per_gpu = {gpu: sum(1 for (_, lab) in info if lab[0] == gpu) for gpu in "0123"}
    assert per_gpu == {"0": 4, "1": 1, "2": 7, "3": 2}
    profiles = sorted(lab[4] for (_, lab) in info if lab[0] == "0")
    assert profiles == ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"]
    totals = mig_series(series, "suanli_mig_memory_total_bytes")
    used = mig_series(series, "suanli_mig_memory_used_bytes")
    assert totals.keys() == used.keys() and len(totals) == 14
    assert all(used[k] <= totals[k] for k in totals)
    sm = mig_series(series, "suanli_mig_sm_active_ratio")
    assert {k[0] for k in sm} == {"0", "1", "2", "3"}
    for gpu in "0123":
        assert gpu in by_gpu(series, "suanli_gpu_power_watts"), "power stays on the parent"
        assert gpu not in by_gpu(series, "suanli_gpu_sm_active_ratio"), "no GPU-level GPM in MIG"
    for gpu in "4567":
        assert gpu in by_gpu(series, "suanli_gpu_sm_active_ratio")
    power_series = [k for k in series if k[0] == "suanli_gpu_power_watts"]
    assert len(power_series) == 8, "device-level values are never repeated per instance"


def test_mig_activity_matches_each_instance_workload() -> None:
    gpus = node("h100-mig", xid_events=False)
    gpus.at(50.0)
    series = gpus.at(60.0)
    sm = mig_series(series, "suanli_mig_sm_active_ratio")
    for (gpu, gi, _ci), value in sm.items():  # NVML's percent for that instance, as a ratio
        nvml = nvml_gpm_percent("h100-mig", int(gpu), 50.0, 60.0, int(gi))
        assert value == pytest.approx(nvml["sm_active"] / 100, abs=1e-9)
    idle = [v for (gpu, _gi, _ci), v in sm.items() if gpu == "3"]
    assert min(idle) == 0.0 < max(idle), "GPU 3: a training 4g.40gb beside an idle 3g.40gb"


def test_a100_in_mig_mode_has_instances_but_no_gpm() -> None:
    gpus = node("a100-mig", xid_events=False)
    gpus.at(0.0)
    series = gpus.at(30.0)
    assert mig_series(series, "suanli_mig_info")
    assert mig_series(series, "suanli_mig_sm_active_ratio") == {}


def test_every_gpm_metric_the_agent_asks_for_is_a_real_nvml_metric() -> None:
    for metric in GPM_METRICS.values():
        assert 0 < metric < pynvml.NVML_GPM_METRIC_MAX
