"""Conservation over simulated hours: for every quantity, the jobs plus job_id="none" add up to
the GPUs' totals (within 0.1 %), the GPU totals taken from the GPU-level series the agent exports
(energy counter, SM activity gauges) or from hand arithmetic (GPU-seconds)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from tests.gpu_helpers import Series, by_gpu, keyed, node

STEP = 15.0
H100_BF16 = 989.4e12  # dense BF16 tensor peak, H100 SXM datasheet


def job_totals(series: Series) -> dict[str, dict[tuple[str, str], float]]:
    """{quantity: {(scheduler, job_id): value}}: energy, allocated, busy, idle_allocated, bf16."""
    out: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for (name, labels), value in series.items():
        if name == "suanli_job_gpu_energy_joules_total":
            out["energy"][(labels[0], labels[1])] = value
        elif name in ("suanli_job_gpu_seconds_total", "suanli_job_delivered_flops_total"):
            out[labels[2]][(labels[0], labels[1])] = value
    return out


def test_every_quantity_is_conserved_over_an_hour_of_jobs_starting_and_ending(
    tmp_path: Path,
) -> None:
    gpus = node("jobs-churn", xid_events=False, jobs_procfs=str(tmp_path / "proc"))
    first = by_gpu(gpus.at(0.0), "suanli_gpu_energy_joules_total")
    busy = tensor_bound = 0.0
    for k in range(1, 241):
        series = gpus.at(k * STEP)
        busy += sum(by_gpu(series, "suanli_gpu_sm_active_ratio").values()) * STEP
        tensor = sum(by_gpu(series, "suanli_gpu_tensor_active_ratio").values())
        tensor_bound += tensor * H100_BF16 * STEP
    last = by_gpu(series, "suanli_gpu_energy_joules_total")
    found = job_totals(series)

    assert sum(found["allocated"].values()) == pytest.approx(8 * 3600.0, rel=1e-9)
    assert sum(found["energy"].values()) == pytest.approx(
        sum(last[g] - first[g] for g in first), rel=1e-3
    )
    assert sum(found["busy"].values()) == pytest.approx(busy, rel=1e-3)
    # FLOP: the jobs' share adds up to the GPUs' own counter, and is bounded by the tensor
    # activity at the datasheet peak (clocks at most their maximum)
    gpu_flops = keyed(series, "suanli_gpu_delivered_flops_total")
    assert gpu_flops, "the GPUs' delivered-work counter is exported"
    bf16 = sum(by_precision.get("bf16", 0.0) for by_precision in gpu_flops.values())
    assert sum(found["bf16"].values()) == pytest.approx(bf16, rel=1e-3)
    assert 0.5 * tensor_bound < sum(found["bf16"].values()) <= tensor_bound * (1 + 1e-9)

    # Slurm job 3001044 holds GPU 7 alone and idle from 2000 s to 3000 s, then shares it with
    # the gpu-bench container until 3400 s: 1000 + 400 / 2 GPU-seconds, 1000 of them idle
    idle_job = ("slurm", "3001044")
    assert found["allocated"][idle_job] == pytest.approx(1200.0, abs=STEP)
    assert found["idle_allocated"][idle_job] == pytest.approx(1000.0, abs=STEP)
    assert found["busy"][idle_job] == 0.0, "its processes compute nothing"
    assert found["energy"][("slurm", "3001001")] > 0, "an ended job's counter stays"


def test_a_pod_on_a_1g_slice_of_seven_gets_its_16_of_132_sms(tmp_path: Path) -> None:
    gpus = node("h100-mig", xid_events=False, jobs_procfs=str(tmp_path / "proc"))
    first = by_gpu(gpus.at(0.0), "suanli_gpu_energy_joules_total")
    instance_busy = 0.0
    for k in range(1, 41):
        series = gpus.at(k * STEP)
        for (name, labels), value in series.items():
            # embed-small runs on GPU 2's first 1g.10gb: GPU instance 7 (placement 0)
            if name == "suanli_mig_sm_active_ratio" and labels[0] == "2" and labels[2] == "7":
                instance_busy += value * STEP
    last = by_gpu(series, "suanli_gpu_energy_joules_total")
    found = job_totals(series)
    pods = {k for k in found["energy"] if k[0] == "kubernetes"}
    assert len(pods) == 2, "mistral on GPU 0's 3g.40gb, embed-small on GPU 2's 1g.10gb"
    (embed,) = [k for k in pods if found["allocated"][k] < 100]  # the 3g gets 600 x 60 / 132
    assert found["allocated"][embed] == pytest.approx(600 * 16 / 132, rel=1e-9)
    assert found["energy"][embed] == pytest.approx((last["2"] - first["2"]) * 16 / 132, rel=1e-9)
    assert found["busy"][embed] == pytest.approx(instance_busy * 16 / 132, rel=1e-9)
    assert instance_busy > 0
    assert sum(found["allocated"].values()) == pytest.approx(8 * 600.0, rel=1e-9)
    drawn = sum(last[g] - first[g] for g in first)
    assert sum(found["energy"].values()) == pytest.approx(drawn, rel=1e-3)


MIXED = """
name: mig-and-whole-churn
description: two MIG GPUs and two whole GPUs, jobs starting and stopping, one GPU shared
seed: 17
gpus:
  - model: H100-SXM5-80GB
    workload: inference
    mig: [1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb]
  - {model: H100-SXM5-80GB, workload: training, mig: [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]}
  - {model: H100-SXM5-80GB, count: 2, workload: training}
jobs:
  - {id: pod-a, scheduler: kubernetes, namespace: t1, gpus: [0], mig: 0, end: 300, user: 0}
  - {id: pod-b, scheduler: kubernetes, namespace: t2, gpus: [0], mig: 3, start: 120, user: 0}
  - {id: pod-c, scheduler: kubernetes, namespace: t1, gpus: [1], mig: 0, start: 60, end: 500}
  - {id: "501", scheduler: slurm-v2, gpus: [2, 3], end: 400}
  - {id: "502", scheduler: slurm-v2, gpus: [1], mig: 2, idle: true, start: 100, end: 550}
  - {id: notebook, scheduler: docker, gpus: [3], start: 200, user: 1000}
"""
# SMs from the H100-SXM5-80GB-MIG capture, of 132 for the full-size 7g.80gb profile
SMS = {"1g.10gb": 16, "2g.20gb": 32, "3g.40gb": 60}


def test_mig_and_whole_gpus_with_jobs_coming_and_going_add_up(tmp_path: Path) -> None:
    gpus = node(MIXED, xid_events=False, jobs_procfs=str(tmp_path / "proc"))
    first = by_gpu(gpus.at(0.0), "suanli_gpu_energy_joules_total")
    busy = 0.0
    for k in range(1, 41):
        series = gpus.at(k * STEP)
        busy += sum(by_gpu(series, "suanli_gpu_sm_active_ratio").values()) * STEP  # GPUs 2, 3
        profile = {
            (labels[0], labels[2]): labels[4]
            for (name, labels) in series
            if name == "suanli_mig_info"
        }
        for (name, labels), value in series.items():
            if name == "suanli_mig_sm_active_ratio":
                busy += value * SMS[profile[(labels[0], labels[2])]] / 132 * STEP
    last = by_gpu(series, "suanli_gpu_energy_joules_total")
    found = job_totals(series)

    assert sum(found["allocated"].values()) == pytest.approx(4 * 600.0, rel=1e-9)
    drawn = sum(last[g] - first[g] for g in first)
    assert sum(found["energy"].values()) == pytest.approx(drawn, rel=1e-3)
    assert sum(found["busy"].values()) == pytest.approx(busy, rel=1e-3)
    pods = sorted(found["allocated"][k] for k in found["allocated"] if k[0] == "kubernetes")
    one_g, three_g = 16 / 132, 60 / 132
    # pod-a 0-300 s and pod-b 120-600 s on a 1g.10gb each, pod-c 60-500 s on the 3g.40gb
    expected = sorted([300 * one_g, 480 * one_g, 440 * three_g])
    assert pods == pytest.approx(expected, abs=STEP * three_g)
    idle_job = ("slurm", "502")  # holds GPU 1's first 1g.10gb, computing nothing, 100-550 s
    assert found["allocated"][idle_job] == pytest.approx(450 * one_g, abs=STEP * one_g)
    assert found["idle_allocated"][idle_job] == found["allocated"][idle_job]
    assert found["busy"][idle_job] == 0.0
    # Slurm 501 holds GPUs 2 and 3 for 400 s, sharing GPU 3 with the notebook from 200 s on;
    # the notebook has GPU 3 to itself after 400 s
    assert found["allocated"][("slurm", "501")] == pytest.approx(400 + 200 + 200 / 2, abs=2 * STEP)
    (notebook,) = [v for k, v in found["allocated"].items() if k[0] == "container"]
    assert notebook == pytest.approx(200 / 2 + 200, abs=2 * STEP)
