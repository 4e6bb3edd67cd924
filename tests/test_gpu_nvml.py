"""GPU metrics through the real NVML code path, against the pynvml-faithful fake."""

from __future__ import annotations

import pytest

from tests.gpu_helpers import by_gpu, families_of_gpu, keyed, node

DEFAULT_FAMILIES = {
    "suanli_gpu_info",
    "suanli_gpu_up",
    "suanli_gpu_utilization_ratio",
    "suanli_gpu_memory_controller_utilization_ratio",
    "suanli_gpu_memory_used_bytes",
    "suanli_gpu_memory_total_bytes",
    "suanli_gpu_memory_reserved_bytes",
    "suanli_gpu_power_watts",
    "suanli_gpu_power_limit_watts",
    "suanli_gpu_energy_joules_total",
    "suanli_gpu_temperature_celsius",
    "suanli_gpu_clock_hertz",
    "suanli_gpu_performance_state",
    "suanli_gpu_throttle_seconds_total",
    "suanli_gpu_pcie_throughput_bytes_per_second",
    "suanli_gpu_pcie_link_generation",
    "suanli_gpu_pcie_link_width",
    "suanli_gpu_pcie_replays_total",
    "suanli_gpu_ecc_errors_total",
    "suanli_gpu_remapped_rows",
    "suanli_gpu_row_remap_state",
    "suanli_gpu_recovery_action",
    "suanli_gpu_nvlink_links",
    "suanli_gpu_nvlink_bytes_total",
    "suanli_gpu_nvlink_errors_total",
}
DETAIL_FAMILIES = {
    "suanli_gpu_bar1_used_bytes",
    "suanli_gpu_bar1_total_bytes",
    "suanli_gpu_encoder_utilization_ratio",  # video engines: idle in training and LLM serving
    "suanli_gpu_decoder_utilization_ratio",
    "suanli_gpu_temperature_threshold_celsius",
    "suanli_gpu_clock_max_hertz",
    "suanli_gpu_clock_event_active",
    "suanli_gpu_nvlink_up",
}
GIB = 1024**3


def test_h100_node_exports_every_default_family_for_all_8_gpus() -> None:
    series = node("h100-8").at(120.0)
    for gpu in map(str, range(8)):
        missing = DEFAULT_FAMILIES - families_of_gpu(series, gpu)
        assert not missing, f"GPU {gpu} lacks {sorted(missing)}"
        assert not DETAIL_FAMILIES & families_of_gpu(series, gpu), "detail families are off"
    assert series[("suanli_nvml_up", ())] == 1.0


def test_detail_adds_the_detail_families_and_power_limit_range() -> None:
    series = node("h100-8", detail=True).at(120.0)
    for gpu in map(str, range(8)):
        assert families_of_gpu(series, gpu) >= DETAIL_FAMILIES
    limits = keyed(series, "suanli_gpu_power_limit_watts")["0"]
    assert limits == {"enforced": 700.0, "default": 700.0, "min": 200.0, "max": 700.0}
    thresholds = keyed(series, "suanli_gpu_temperature_threshold_celsius")["0"]
    assert {"slowdown", "shutdown"} <= set(thresholds)
    assert keyed(series, "suanli_gpu_clock_max_hertz")["0"]["sm"] == 1980e6


def test_h100_values_are_plausible_and_in_base_units() -> None:
    series = node("h100-8").at(300.0)
    power = by_gpu(series, "suanli_gpu_power_watts")
    limits = keyed(series, "suanli_gpu_power_limit_watts")
    used = by_gpu(series, "suanli_gpu_memory_used_bytes")
    total = by_gpu(series, "suanli_gpu_memory_total_bytes")
    for gpu in power:
        assert 50.0 < power[gpu] <= limits[gpu]["enforced"]
        assert 0 <= used[gpu] <= total[gpu]
        assert total[gpu] == 81559 * 1024 * 1024  # FB total of an H100 SXM5 80GB, in bytes
        assert 0.0 <= by_gpu(series, "suanli_gpu_utilization_ratio")[gpu] <= 1.0
        assert 1e8 < keyed(series, "suanli_gpu_clock_hertz")[gpu]["sm"] <= 1980e6
        assert 20.0 < keyed(series, "suanli_gpu_temperature_celsius")[gpu]["gpu"] < 95.0
    links = keyed(series, "suanli_gpu_nvlink_links")["0"]
    assert links == {"up": 18.0, "down": 0.0}


def test_bar1_window_is_the_captured_size_and_follows_the_framebuffer_in_use() -> None:
    """nvidia-smi -q of an H100 SXM5 (565.57.01, 590.48.01): BAR1 Total 131072 MiB; Used 1 MiB
    idle and 19819 MiB with 19818 MiB of framebuffer in use: used = framebuffer used + 1 MiB."""
    series = node("h100-8", detail=True).at(300.0)
    fb_used = by_gpu(series, "suanli_gpu_memory_used_bytes")
    for gpu, used in by_gpu(series, "suanli_gpu_bar1_used_bytes").items():
        assert by_gpu(series, "suanli_gpu_bar1_total_bytes")[gpu] == 131072 * 2**20
        assert used == fb_used[gpu] + 2**20
    # H20 was never captured: no BAR1 size to show, so the family is absent, not 0
    assert by_gpu(node("h20-8", detail=True).at(60.0), "suanli_gpu_bar1_total_bytes") == {}


def test_no_fan_on_sxm_boards_absent_not_zero() -> None:
    series = node("h100-8").at(60.0)
    assert by_gpu(series, "suanli_gpu_fan_speed_ratio") == {}


def test_energy_counter_grows_with_the_power_drawn() -> None:
    gpus = node("h100-8")
    first = gpus.at(100.0)
    mid = gpus.at(110.0)
    second = gpus.at(120.0)
    for gpu in map(str, range(8)):
        e0 = by_gpu(first, "suanli_gpu_energy_joules_total")[gpu]
        e1 = by_gpu(second, "suanli_gpu_energy_joules_total")[gpu]
        watts = [by_gpu(s, "suanli_gpu_power_watts")[gpu] for s in (first, mid, second)]
        assert e1 > e0
        expected = (watts[0] + 2 * watts[1] + watts[2]) / 4 * 20.0
        assert (e1 - e0) == pytest.approx(expected, rel=0.15)


def test_static_facts_are_read_once_and_not_supported_calls_never_repeat() -> None:
    gpus = node("h100-8")
    for t in range(0, 50, 5):
        gpus.at(float(t))
    calls = gpus.fake.calls
    assert calls["nvmlDeviceGetName"] == 8
    assert calls["nvmlDeviceGetUUID"] == 8
    assert calls["nvmlDeviceGetMaxClockInfo"] == 8 * 4
    assert calls["nvmlDeviceGetFanSpeed"] == 8, "NOT_SUPPORTED on SXM: asked once per GPU"
    assert calls["nvmlDeviceGetPowerUsage"] == 8 * 10


LOST_GPU = """
name: lost-gpu
driver_version: "565.57.01"
gpus: {model: H100-SXM5-80GB, count: 4, workload: training}
faults:
  - {kind: gpu_lost, gpu: 2, at: 60, until: 180}
"""


def test_a_lost_gpu_keeps_up_0_under_its_uuid_and_the_others_continue() -> None:
    gpus = node(LOST_GPU)
    gpus.at(0.0)  # GPM activity needs a first sample
    before = gpus.at(30.0)
    uuid = next(labels[1] for (n, labels) in before if n == "suanli_gpu_up" and labels[0] == "2")
    during = gpus.at(90.0)
    assert during[("suanli_gpu_up", ("2", uuid))] == 0.0
    assert families_of_gpu(during, "2") == {
        "suanli_gpu_up",
        "suanli_gpu_info",
        "suanli_gpu_healthy",
        "suanli_gpu_health_check_failed",
        "suanli_gpu_unresponsive_seconds",
    }
    assert during[("suanli_gpu_unresponsive_seconds", ("2", uuid, "lost"))] > 0
    assert during[("suanli_gpu_health_check_failed", ("2", uuid, "lost"))] == 1.0
    assert during[("suanli_gpu_healthy", ("2", uuid))] == 0.0
    for gpu in ("0", "1", "3"):
        assert families_of_gpu(during, gpu) == families_of_gpu(before, gpu)
    errors = {k: v for k, v in during.items() if k[0] == "suanli_nvml_errors_total"}
    assert any(labels[1] == "GpuIsLost" for (_, labels) in errors)
    after = gpus.at(200.0)
    assert after[("suanli_gpu_up", ("2", uuid))] == 1.0
    assert families_of_gpu(after, "2") == families_of_gpu(before, "2")


def test_nvml_absent_at_start_is_picked_up_when_it_appears() -> None:
    gpus = node("""
name: late-driver
gpus: {model: H100-SXM5-80GB, count: 2, workload: idle}
faults:
  - {kind: nvml_absent, until: 30}
""")
    early = gpus.at(0.0)
    assert early[("suanli_nvml_up", ())] == 0.0
    assert by_gpu(early, "suanli_gpu_up") == {}
    for t in (5.0, 10.0, 20.0):
        assert gpus.at(t)[("suanli_nvml_up", ())] == 0.0
    inits_while_absent = gpus.fake.calls["nvmlInit"]
    assert inits_while_absent < 5, "retries back off instead of hammering a missing library"
    late = gpus.at(60.0)
    assert late[("suanli_nvml_up", ())] == 1.0
    assert by_gpu(late, "suanli_gpu_up") == {"0": 1.0, "1": 1.0}


def test_an_error_storm_on_one_call_loses_that_value_only_and_is_counted() -> None:
    gpus = node("""
name: storm
gpus: {model: H100-SXM5-80GB, count: 2, workload: training}
faults:
  - {kind: error_storm, functions: [nvmlDeviceGetPowerUsage], at: 10, until: 70}
""")
    series = gpus.at(20.0)
    series = gpus.at(25.0)
    assert by_gpu(series, "suanli_gpu_power_watts") == {}
    assert by_gpu(series, "suanli_gpu_up") == {"0": 1.0, "1": 1.0}
    assert by_gpu(series, "suanli_gpu_energy_joules_total").keys() == {"0", "1"}
    assert series[("suanli_nvml_errors_total", ("nvmlDeviceGetPowerUsage", "Unknown"))] == 4.0
    assert len(by_gpu(gpus.at(80.0), "suanli_gpu_power_watts")) == 2, "recovers after the storm"


def test_a_gpu_answering_nothing_but_errors_reads_as_down() -> None:
    gpus = node("""
name: sick
gpus: {model: A100-SXM4-80GB, count: 2, workload: training}
faults:
  - {kind: error_storm, gpu: 1, at: 10}
""")
    gpus.at(0.0)
    series = gpus.at(20.0)
    assert by_gpu(series, "suanli_gpu_up") == {"0": 1.0, "1": 0.0}


def test_an_old_driver_without_versioned_calls_falls_back() -> None:
    gpus = node("""
name: old-driver
driver_version: "525.105.17"
cuda_driver_version: 12000
gpus: {model: H800-SXM5-80GB, count: 2, workload: training}
faults:
  - kind: missing_functions
    functions: [nvmlDeviceGetMemoryInfo_v2, nvmlSystemGetCudaDriverVersion_v2]
""")
    series = gpus.at(30.0)
    assert len(by_gpu(series, "suanli_gpu_memory_used_bytes")) == 2
    assert by_gpu(series, "suanli_gpu_memory_reserved_bytes") == {}, "v1 has no reserved field"
    info = [labels for (n, labels) in series if n == "suanli_nvml_info"]
    assert info == [("525.105.17", info[0][1], "12.0")]
    assert len(keyed(series, "suanli_gpu_throttle_seconds_total")) == 2


def test_consumer_card_has_a_fan_and_no_ecc_or_nvlink() -> None:
    gpus = node("""
name: workstation
gpus: {model: RTX-4090, count: 1, workload: inference}
""")
    series = gpus.at(40.0)
    assert 0.0 <= by_gpu(series, "suanli_gpu_fan_speed_ratio")["0"] <= 1.0
    assert keyed(series, "suanli_gpu_ecc_errors_total") == {}
    assert keyed(series, "suanli_gpu_nvlink_links") == {}
    assert keyed(series, "suanli_gpu_temperature_celsius")["0"].keys() == {"gpu"}


def test_a_refused_device_count_reads_as_nvml_down_and_is_retried() -> None:
    gpus = node(
        """
name: count-refused
gpus: {model: H100-SXM5-80GB, count: 2, workload: training}
faults:
  - {kind: error_storm, functions: [nvmlDeviceGetCount], at: 0, until: 30}
"""
    )
    early = gpus.at(10.0)
    assert early[("suanli_nvml_up", ())] == 0.0
    assert early[("suanli_nvml_errors_total", ("nvmlDeviceGetCount", "Unknown"))] == 1.0
    assert by_gpu(gpus.at(40.0), "suanli_gpu_up") == {"0": 1.0, "1": 1.0}
