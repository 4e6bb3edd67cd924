"""Key lines of every golden exposition, against numbers that do not come from the code that
wrote it: the real captures (../shared/reference/, copies in tests/fixtures/reference) and the
scenario files, each written here by hand with its arithmetic.

tests/test_goldens.py keeps the goldens byte for byte (regression); regenerating them with
--update-goldens cannot make a wrong value right here. The goldens are parsed with
prometheus_client's parser, not the agent's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

GOLDENS = Path(__file__).parent / "goldens"
MIB = 1024 * 1024  # bytes; nvidia-smi prints FB memory in MiB
HGX = ["18", "2A", "3A", "5D", "9A", "AB", "BA", "DB"]  # bus ids, H100-SXM5-80GB-x8 capture

# What `nvidia-smi -q` printed for each model: FB Total and Reserved (MiB), Default Power Limit
# (W), PCIe Device Max generation and Link Width Max, Max Clocks Memory (MHz), Product Name.
H100 = {  # nvidia-smi/H100-SXM5-80GB-x8__565.57.01__gls.txt (Reserved: 454 MiB on 565.57.01)
    "total": 81559 * MIB,  # = 85,520,809,984 B
    "reserved": 454 * MIB,  # = 476,053,504 B
    "limit": 700.0,
    "pcie": (5.0, 16.0),
    "memory_hz": 2619e6,
    "name": "NVIDIA H100 80GB HBM3",
}
H800 = {  # nvidia-smi/H800-SXM5-80GB__525.105.17__llmaction.txt
    "total": 81559 * MIB,
    "reserved": 516 * MIB,  # = 541,065,216 B
    "limit": 700.0,
    "pcie": (5.0, 16.0),
    "memory_hz": 2619e6,
    "name": "NVIDIA H800",
}
H200 = {  # nvidia-smi/H200-SXM-141GB__590.48.01__nvgpuexp-idle.txt
    "total": 143771 * MIB,  # = 150,754,820,096 B, as pynvml answered on the real H200 too
    "reserved": 614 * MIB,
    "limit": 700.0,
    "pcie": (5.0, 16.0),
    "memory_hz": 3201e6,
    "name": "NVIDIA H200",
}
A100 = {  # nvidia-smi/A100-SXM4-80GB-x4__555.42.02__gls.txt
    "total": 81920 * MIB,
    "reserved": 763 * MIB,
    "limit": 500.0,
    "pcie": (4.0, 16.0),
    "memory_hz": 1593e6,
    "name": "NVIDIA A100-SXM4-80GB",
}
L40S = {  # nvidia-smi/L40S__550.127.05__gls.txt
    "total": 46068 * MIB,
    "reserved": 479 * MIB,
    "limit": 350.0,
    "pcie": (4.0, 16.0),
    "name": "NVIDIA L40S",
}
RTX4090 = {  # nvidia-smi/RTX-4090-x8__550.127.05__gls.txt
    "total": 24564 * MIB,
    "reserved": 354 * MIB,
    "limit": 450.0,
    "pcie": (4.0, 16.0),
    "name": "NVIDIA GeForce RTX 4090",
}
H20 = {  # not captured: 400 W [gpu-models.md S12]; FB as the 96 GB GH200 capture prints it
    "total": 97871 * MIB,
    "reserved": 1103 * MIB,
    "limit": 400.0,
    "pcie": (5.0, 16.0),
    "name": "NVIDIA H20",
}
# scenario: {GPU index: model} (from suanli_sim/scenarios/*.yaml) and whether the scenario runs
# the driver of the model's capture (the reserved memory differs between drivers: H100 454 MiB
# on 565.57.01, 479 MiB on 590.48.01)
EIGHT = range(8)
SCENARIOS: dict[str, tuple[dict[int, dict[str, object]], bool]] = {
    "h100-8": ({i: H100 for i in EIGHT}, True),
    "h100-64": ({i: H100 for i in range(64)}, True),
    "idle-8": ({i: H100 for i in EIGHT}, True),
    "jobs-churn": ({i: H100 for i in EIGHT}, True),
    "procs-500": ({i: H100 for i in EIGHT}, True),
    "xid-storm": ({i: H100 for i in EIGHT}, True),
    "h100-mig": ({i: H100 for i in EIGHT}, False),  # driver 590.48.01
    "h100-mig-56": ({i: H100 for i in EIGHT}, False),
    "mixed-faults": ({i: H100 if i < 4 else H800 for i in EIGHT}, False),
    "h800-8": ({i: H800 for i in EIGHT}, True),
    "h200-8": ({i: H200 for i in EIGHT}, True),
    "a100-mig": ({i: A100 for i in EIGHT}, False),  # driver 535.54.03
    "l40s-4": ({i: L40S for i in range(4)}, True),
    "rtx4090-8": ({i: RTX4090 for i in EIGHT}, True),
    "h20-8": ({i: H20 for i in EIGHT}, False),
}
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def golden(scenario: str) -> Series:
    text = (GOLDENS / f"{scenario}.prom").read_text()
    found: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def per_gpu(series: Series, name: str, **labels: str) -> dict[int, float]:
    """{GPU index: value} of the series of `name` that carry `labels`."""
    want = set(labels.items())
    return {
        int(dict(key)["gpu"]): value
        for (n, key), value in series.items()
        if n == name and want <= key and "gpu" in dict(key)
    }


def info(series: Series) -> dict[int, dict[str, str]]:
    return {int(dict(key)["gpu"]): dict(key) for (n, key) in series if n == "suanli_gpu_info"}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_gpu_of_a_golden_shows_its_model_s_captured_facts(scenario: str) -> None:
    models, same_driver = SCENARIOS[scenario]
    series = golden(scenario)
    assert {g: i["model"] for g, i in info(series).items()} == {
        g: m["name"] for g, m in models.items()
    }
    expected = {
        ("suanli_gpu_memory_total_bytes", ()): "total",
        ("suanli_gpu_power_limit_watts", (("limit", "default"),)): "limit",
    }
    if same_driver:
        expected[("suanli_gpu_memory_reserved_bytes", ())] = "reserved"
    for (name, labels), fact in expected.items():
        values = per_gpu(series, name, **dict(labels))
        assert values, f"{scenario}: no {name}"
        assert values == {g: models[g][fact] for g in values}, f"{scenario}: {name}"
    generation = per_gpu(series, "suanli_gpu_pcie_link_generation", link="max")
    width = per_gpu(series, "suanli_gpu_pcie_link_width", link="max")
    assert {g: (generation[g], width[g]) for g in generation} == {
        g: models[g]["pcie"] for g in generation
    }


def test_h100_8_is_the_captured_hgx_board() -> None:
    series = golden("h100-8")
    gpus = info(series)
    # GPU headers of the 8-GPU capture, in order: "GPU 00000000:18:00.0" ... "00000000:DB:00.0"
    # (the agent writes bus ids in lower case, as sysfs does)
    bus_ids = [f"00000000:{b}:00.0".lower() for b in HGX]
    assert [gpus[g]["pci_bus_id"] for g in EIGHT] == bus_ids
    assert {i["vbios_version"] for i in gpus.values()} == {"96.00.74.00.01"}  # VBIOS Version
    assert {i["driver_version"] for i in gpus.values()} == {"565.57.01"}  # Driver Version
    assert {i["cuda_driver_version"] for i in gpus.values()} == {"12.7"}  # CUDA Version
    assert set(per_gpu(series, "suanli_gpu_power_limit_watts", limit="enforced").values()) == {
        700.0  # Current Power Limit: 700.00 W
    }
    # `nvidia-smi nvlink -s` of the H100: Link 0 ... Link 17
    assert set(per_gpu(series, "suanli_gpu_nvlink_links", state="up").values()) == {18.0}
    # Fabric: State Completed, Status Success, CliqueId 0
    fabric = {
        dict(k)["state"] + "/" + dict(k)["status"] + "/" + dict(k)["clique_id"]
        for (n, k) in series
        if n == "suanli_gpu_fabric_info"
    }
    assert fabric == {"completed/success/0"}


def test_idle_8_shows_the_captured_idle_h100() -> None:
    """Idle H100s in the 8-GPU capture: P0, Clocks SM 345 MHz and Memory 2619 MHz, 0 %
    utilization, PCIe Gen5 current, Power Draw 75-101 W (middle GPU 85.27 W)."""
    series = golden("idle-8")
    assert set(per_gpu(series, "suanli_gpu_clock_hertz", clock="sm").values()) == {345e6}
    assert set(per_gpu(series, "suanli_gpu_clock_hertz", clock="memory").values()) == {2619e6}
    assert set(per_gpu(series, "suanli_gpu_performance_state").values()) == {0.0}
    assert set(per_gpu(series, "suanli_gpu_utilization_ratio").values()) == {0.0}
    assert set(per_gpu(series, "suanli_gpu_pcie_link_generation", link="current").values()) == {5.0}
    assert all(75 <= w <= 101 for w in per_gpu(series, "suanli_gpu_power_watts").values())


def test_h800_8_has_the_captured_8_links_and_no_ecc_counters() -> None:
    """H800 capture: `nvlink --status` lists Link 0-7; "Ecc Mode Current: Disabled"."""
    series = golden("h800-8")
    assert set(per_gpu(series, "suanli_gpu_nvlink_links", state="up").values()) == {8.0}
    assert per_gpu(series, "suanli_gpu_ecc_errors_total", error="uncorrected") == {}
    assert {i["driver_version"] for i in info(series).values()} == {"525.105.17"}


def test_h200_8_runs_at_the_captured_memory_clock() -> None:
    """H200 captures: Max Clocks Memory 3201 MHz, which the memory runs at, idle or busy."""
    series = golden("h200-8")
    assert set(per_gpu(series, "suanli_gpu_clock_hertz", clock="memory").values()) == {3201e6}


def test_l40s_4_idle_card_drops_to_p8_and_gen1_and_has_no_nvlink() -> None:
    """L40S 550.127.05 capture (idle): P8, Clocks Memory 405 MHz, PCIe Current 1 of Max 4;
    `nvlink -s`: "Device does not have or support Nvlink"; Fan Speed N/A. GPU 3 idles
    (l40s-4.yaml)."""
    series = golden("l40s-4")
    assert per_gpu(series, "suanli_gpu_performance_state")[3] == 8.0
    assert per_gpu(series, "suanli_gpu_clock_hertz", clock="memory")[3] == 405e6
    assert per_gpu(series, "suanli_gpu_pcie_link_generation", link="current")[3] == 1.0
    assert per_gpu(series, "suanli_gpu_nvlink_links", state="up") == {}
    assert per_gpu(series, "suanli_gpu_fan_speed_ratio") == {}


def test_rtx4090_8_has_fans_and_sxm_boards_do_not() -> None:
    """Fan Speed: "0 %" on every RTX 4090 of its capture (a reading), "N/A" on the H100s."""
    assert len(per_gpu(golden("rtx4090-8"), "suanli_gpu_fan_speed_ratio")) == 8
    assert per_gpu(golden("h100-8"), "suanli_gpu_fan_speed_ratio") == {}


@pytest.mark.parametrize(
    ("scenario", "gpu", "profiles"),
    [  # MIG instance FB totals: H100 MIG capture 3g 40448, 2g 20096, 1g 9984 MiB; A100 MIG
        # capture four 1g.20gb of 19968 MiB. Layouts from suanli_sim/scenarios/*.yaml.
        ("h100-mig", 0, {"3g.40gb": 40448, "2g.20gb": 20096, "1g.10gb": 9984}),
        ("a100-mig", 0, {"1g.20gb": 19968}),
    ],
)
def test_mig_instances_have_the_captured_memory(
    scenario: str, gpu: int, profiles: dict[str, int]
) -> None:
    series = golden(scenario)
    profile_of = {
        dict(k)["gpu_instance"]: dict(k)["profile"]
        for (n, k) in series
        if n == "suanli_mig_info" and dict(k)["gpu"] == str(gpu)
    }
    totals = {
        dict(k)["gpu_instance"]: v
        for (n, k), v in series.items()
        if n == "suanli_mig_memory_total_bytes" and dict(k)["gpu"] == str(gpu)
    }
    assert totals and totals.keys() == profile_of.keys()
    assert {gi: profiles[profile_of[gi]] * MIB for gi in totals} == totals


def test_mixed_faults_shows_its_scenario_s_faults() -> None:
    """mixed-faults.yaml: GPU 3 falls off the bus at 60 s; GPU 2's link trains at x8 of x16."""
    series = golden("mixed-faults")  # at 120 s
    assert per_gpu(series, "suanli_gpu_up")[3] == 0.0
    assert per_gpu(series, "suanli_gpu_pcie_link_width", link="current")[2] == 8.0


def test_no_nvml_has_no_gpu() -> None:
    series = golden("no-nvml")
    assert series[("suanli_nvml_up", frozenset())] == 0.0
    assert info(series) == {}


def test_every_golden_is_checked_here() -> None:
    checked = set(SCENARIOS) | {"no-nvml"}
    assert {p.stem for p in GOLDENS.glob("*.prom")} == checked
