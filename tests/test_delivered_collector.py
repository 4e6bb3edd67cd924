"""The GPU collector's delivered-work counter end to end (fake NVML -> gateway -> backend ->
collector): the model's arithmetic written out here, applied to the simulated GPU's GPM ground
truth and to the SM clocks the exposition itself shows; SM counts from the H100 MIG capture."""

from __future__ import annotations

import pytest

from suanli_sim.fake_scenario import load_scenario
from tests.gpu_helpers import Node, Series
from tests.test_delivered_compute import by_type, steady

H100_BF16 = 989.4e12  # dense, FLOP/s (datasheet, peak_flops.py)
H100_FP32 = 66.9e12
H100_FP16_VECTOR = 133.8e12
H100_INT8 = 1978.9e12
MAX_SM_HZ = 1980e6  # `Max Clocks / SM` of the H100 captures
T1, T2, T3 = 100.0, 115.0, 130.0


def delivered(series: Series, gpu: str) -> dict[str, float]:
    return {
        labels[2]: value
        for (name, labels), value in series.items()
        if name == "suanli_gpu_delivered_flops_total" and labels[0] == gpu
    }


def unavailable(series: Series) -> dict[str, str]:
    return {
        labels[0]: labels[2]
        for (name, labels), value in series.items()
        if name == "suanli_gpu_delivered_flops_unavailable" and value == 1.0
    }


def sm_clock(series: Series, gpu: str) -> float:
    return next(
        v
        for (name, labels), v in series.items()
        if name == "suanli_gpu_clock_hertz" and labels[0] == gpu and labels[2] == "sm"
    )


def test_a_training_h100_counts_its_work_per_precision() -> None:
    """Cycle 1 has no GPM answer; cycle 2's work appears at 0 (new series), cycle 3 adds both
    intervals' work, each: mean activity x peak x SM clock at its end / 1980 MHz x 15 s."""
    node = Node(load_scenario("h100-8"))
    first = node.at(T1)
    assert delivered(first, "0") == {} and unavailable(first)["0"] == "no_activity"
    second = node.at(T2)
    assert delivered(second, "0") == {"bf16": 0.0, "fp32": 0.0}
    third = node.at(T3)

    def mean(metric: str, t1: float, t2: float) -> float:
        return node.fake.expected_activity(0, metric, t1, t2)

    expected: dict[str, float] = {}
    for (t1, t2), series in (((T1, T2), second), ((T2, T3), third)):
        scale = sm_clock(series, "0") / MAX_SM_HZ * (t2 - t1)
        bf16 = mean("hmma_tensor_util", t1, t2) * H100_BF16
        bf16 += mean("fp16_util", t1, t2) * H100_FP16_VECTOR
        expected["bf16"] = expected.get("bf16", 0.0) + bf16 * scale
        fp32 = mean("fp32_util", t1, t2) * H100_FP32 * scale
        expected["fp32"] = expected.get("fp32", 0.0) + fp32
    assert delivered(third, "0") == pytest.approx(expected, rel=1e-9)
    # a plausible training level: between 30 % and 60 % of the bf16 peak over the 30 s
    assert 0.3 < expected["bf16"] / (H100_BF16 * 30) < 0.6
    # the idle GPU 7 has done no work: no series, and it says why
    assert delivered(third, "7") == {} and unavailable(third)["7"] == "no_activity"


def test_a_mig_gpu_counts_its_instances_by_their_sm_share() -> None:
    """GPU 0 of h100-mig: 3g.40gb, 2g.20gb and two 1g.10gb (60, 32, 16, 16 of 132 SMs in the
    H100 MIG capture, GPU instances 2, 3, 9, 10) serving inference; its counter adds the
    instances' work: one cycle's step is each instance's mean activity x peak x its SM share x
    SM clock / 1980 MHz x 15 s."""
    sms = {2: 60, 3: 32, 9: 16, 10: 16}
    node = Node(load_scenario("h100-mig"))
    for t in (T1, T2, T3):
        before = delivered(node.at(t), "0")
    t4 = T3 + 15.0
    after_series = node.at(t4)
    scale = sm_clock(after_series, "0") / MAX_SM_HZ * (t4 - T3)
    work: dict[str, float] = {}
    for gi, count in sms.items():

        def mean(metric: str, gi: int = gi) -> float:
            return node.fake.expected_activity(0, metric, T3, t4, gi)

        parts = {
            "bf16": mean("hmma_tensor_util") * H100_BF16 + mean("fp16_util") * H100_FP16_VECTOR,
            "fp32": mean("fp32_util") * H100_FP32,
            "int8": mean("imma_tensor_util") * H100_INT8,
        }
        for precision, flops in parts.items():
            work[precision] = work.get(precision, 0.0) + flops * count / 132 * scale
    after = delivered(after_series, "0")
    steps = {p: after[p] - before[p] for p in after}
    assert steps == pytest.approx(work, rel=1e-9)
    assert all(value > 0 for value in work.values())


def test_gpus_without_gpm_say_why() -> None:
    """A100 (Ampere): GPM unsupported, so no counter at all."""
    node = Node(load_scenario("a100-mig"))
    node.at(T1)
    series = node.at(T2)
    assert not any(name == "suanli_gpu_delivered_flops_total" for name, _ in series)
    assert set(unavailable(series).values()) == {"gpm_unsupported"}


def test_the_fakes_tensor_activity_adds_up_by_type_as_on_the_real_h200() -> None:
    """On the real H200, ANY_TENSOR = HMMA + DFMA + IMMA for every kind of GEMM, and a pure bf16
    GEMM's tensor activity is 0.97 of its SM activity: no workload of the fake exceeds that."""
    probe = by_type()
    for row in probe.values():
        parts = sum(float(row[k].strip("*")) for k in ("HMMA_TENSOR", "DFMA_TENSOR", "IMMA_TENSOR"))
        assert float(row["ANY_TENSOR"]) == pytest.approx(parts, abs=0.001)
    gemm = steady()["bf16 GEMM (torch, 8192³)"]
    ceiling = float(gemm["tensor active (any)"]) / float(gemm["SM active"])
    for scenario, gpu in (("h100-8", 0), ("h100-mig", 4), ("h100-mig", 0)):
        node = Node(load_scenario(scenario))
        for t in (T1, T2):
            node.at(t)

        def mean(metric: str, gpu: int = gpu, node: Node = node) -> float:
            return node.fake.expected_activity(gpu, metric, T1, T2)

        typed = mean("hmma_tensor_util") + mean("imma_tensor_util") + mean("dfma_tensor_util")
        assert mean("any_tensor_util") == pytest.approx(typed)
        assert 0 < mean("any_tensor_util") <= ceiling * mean("sm_util")
