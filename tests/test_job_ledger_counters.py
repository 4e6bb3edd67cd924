"""Per-job GPU-seconds, energy and FLOP against hand arithmetic: shared GPUs, MIG instances,
jobs that hold a GPU without a process, and the idle time of allocated GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collectors.job_options import JobsOptions
from agent.collectors.jobs import JobAccounting
from agent.hw import (
    GpuDevice,
    GpuProcess,
    GpuReading,
    GpuSnapshot,
    MigInstance,
    MigReading,
    NvmlStatus,
)
from agent.hw.cgroups import JobRef
from tests.gpu_helpers import SimClock, as_series

PROC = Path(__file__).parent / "fixtures" / "proc-jobs"
SLURM, POD = 1003, 1013  # the fixture's Slurm job 1320003 and a Kubernetes pod
SLURM_JOB = ("slurm", "1320003")
POD_JOB = ("kubernetes", "9493223b-520e-4a97-a45f-359dcf967006")
NONE = ("none", "none")
H100 = "NVIDIA H100 80GB HBM3"
BF16_H100 = 989.4e12  # dense BF16 tensor peak, H100 SXM datasheet
# SMs from the H100-SXM5-80GB-MIG capture (3g.40gb 60, 2g.20gb 32, 1g.10gb 16) and the
# full-size 7g.80gb profile's 132
SMS = {"3g.40gb": 60, "2g.20gb": 32, "1g.10gb": 16}
FULL = 132


def totals(series: dict[tuple[str, tuple[str, ...]], float]) -> dict[tuple[str, ...], float]:
    """{(scheduler, job_id, quantity): value} of the three job counters."""
    out: dict[tuple[str, ...], float] = {}
    for (name, labels), value in series.items():
        if name == "suanli_job_gpu_energy_joules_total":
            key = (*labels, "energy")
            out[key] = value
        elif name in ("suanli_job_gpu_seconds_total", "suanli_job_delivered_flops_total"):
            out[labels] = value
    return out


def of(found: dict[tuple[str, ...], float], job: tuple[str, str], what: str) -> float:
    key = (*job, what)
    return found.get(key, 0.0)


SM_MAX = {"sm": 1980e6}  # H100 SXM's maximum SM clock, held here: no clock factor in the sums


def mig_gpu(joules: float, activity: dict[str, dict[str, float]], *procs: GpuProcess) -> GpuReading:
    """GPU 0 as in the MIG capture: 3g.40gb (GI 2), 2g.20gb (GI 3), two 1g.10gb (GI 9, 10)."""
    layout = [("3g.40gb", 2), ("2g.20gb", 3), ("1g.10gb", 9), ("1g.10gb", 10)]
    device = GpuDevice(0, "GPU-0", H100, "", mig_mode="enabled", max_clocks_hertz=SM_MAX)
    migs = [
        MigReading(
            MigInstance(gi, 0, f"MIG-{gi}", profile, SMS[profile]),
            activity=activity.get(str(gi), {}),
            activity_seconds=10.0 if activity.get(str(gi)) else None,  # the cycles are 10 s apart
        )
        for profile, gi in layout
    ]
    return GpuReading(
        device, energy_joules=joules, clocks_hertz=dict(SM_MAX), mig=migs, processes=list(procs)
    )


def test_a_pod_on_one_1g_slice_is_charged_16_of_132_sms_never_the_whole_gpu() -> None:
    clock = SimClock()
    held = {"MIG-2": (JobRef("slurm", "77"),)}  # an allocation without a process on the 3g
    jobs = JobAccounting(JobsOptions(procfs=str(PROC)), clock=clock, allocations=lambda: held)
    pod = GpuProcess(POD, None, None, gpu_instance=9)
    jobs.samples(GpuSnapshot(NvmlStatus(True), [mig_gpu(1000.0, {}, pod)]))
    clock.t = 10.0
    busy = {"2": {"sm_active": 0.8}, "3": {"sm_active": 0.0}, "9": {"sm_active": 0.5}}
    busy["9"] |= {"tensor_active": 0.4, "hmma_tensor_active": 0.4}
    busy["10"] = {"sm_active": 0.0}
    found = totals(
        as_series(jobs.samples(GpuSnapshot(NvmlStatus(True), [mig_gpu(8000.0, busy, pod)])))
    )

    assert of(found, POD_JOB, "energy") == pytest.approx(7000 * 16 / 132)  # 848.5 J, not 7000
    assert of(found, POD_JOB, "allocated") == pytest.approx(10 * 16 / 132)
    assert of(found, POD_JOB, "busy") == pytest.approx(0.5 * 10 * 16 / 132)
    assert of(found, POD_JOB, "idle_allocated") == 0.0
    assert of(found, POD_JOB, "bf16") == pytest.approx(0.4 * BF16_H100 * 10 * 16 / 132)
    slurm = ("slurm", "77")
    assert of(found, slurm, "energy") == pytest.approx(7000 * 60 / 132)
    assert of(found, slurm, "busy") == pytest.approx(0.8 * 10 * 60 / 132)
    # none: the idle 2g and 1g nobody holds and the 8 SMs no instance covers
    assert of(found, NONE, "allocated") == pytest.approx(10 * (32 + 16 + 8) / 132)
    assert of(found, NONE, "idle_allocated") == pytest.approx(10 * (32 + 16 + 8) / 132)
    assert of(found, NONE, "busy") == 0.0
    for quantity, gpu_total in (("energy", 7000.0), ("allocated", 10.0)):
        charged = sum(v for k, v in found.items() if k[2] == quantity)
        assert charged == pytest.approx(gpu_total)


def whole(joules: float, activity: float | None, *procs: GpuProcess) -> GpuReading:
    device = GpuDevice(1, "GPU-1", H100, "", max_clocks_hertz=SM_MAX)
    act: dict[str, float] = {}
    if activity is not None:  # all of the tensor work HMMA (bf16) work
        act = {"sm_active": activity, "tensor_active": activity / 2}
        act["hmma_tensor_active"] = activity / 2
    seconds = 15.0 if act else None  # the time GPM's answer covers: one 15 s cycle
    return GpuReading(
        device,
        energy_joules=joules,
        clocks_hertz=dict(SM_MAX),
        activity=act,
        activity_seconds=seconds,
        processes=list(procs),
    )


def test_a_shared_gpu_splits_time_equally_and_work_by_sm_share() -> None:
    clock = SimClock()
    held = {"GPU-1": (JobRef("kubernetes", "held-no-process"),)}
    jobs = JobAccounting(JobsOptions(procfs=str(PROC)), clock=clock, allocations=lambda: held)
    slurm, pod = GpuProcess(SLURM, 1e9, 0.6), GpuProcess(POD, 1e9, 0.2)
    jobs.samples(GpuSnapshot(NvmlStatus(True), [whole(0.0, None, slurm, pod)]))
    clock.t = 15.0
    found = totals(
        as_series(jobs.samples(GpuSnapshot(NvmlStatus(True), [whole(6000.0, 0.8, slurm, pod)])))
    )
    idle_job = ("kubernetes", "held-no-process")
    for job in (SLURM_JOB, POD_JOB, idle_job):
        assert of(found, job, "allocated") == pytest.approx(5.0), "15 s held by three jobs"
    assert of(found, SLURM_JOB, "energy") == pytest.approx(6000 * 0.6 / 0.8)
    assert of(found, POD_JOB, "busy") == pytest.approx(0.8 * 15 * 0.2 / 0.8)
    assert of(found, idle_job, "energy") == 0.0, "no SM share: a pod without a process draws none"
    assert of(found, SLURM_JOB, "bf16") == pytest.approx(0.4 * BF16_H100 * 15 * 0.75)
    clock.t = 30.0  # the GPU goes quiet: 2 % SM activity is idle (at most 5 %)
    found = totals(
        as_series(jobs.samples(GpuSnapshot(NvmlStatus(True), [whole(7000.0, 0.02, slurm, pod)])))
    )
    assert of(found, idle_job, "idle_allocated") == pytest.approx(5.0)
    assert of(found, SLURM_JOB, "idle_allocated") == pytest.approx(5.0)
    assert of(found, SLURM_JOB, "allocated") == pytest.approx(10.0)


def test_a_slurm_prolog_mapping_file_for_a_mig_instance_charges_that_instance(
    tmp_path: Path,
) -> None:
    mapping = tmp_path / "mapping"
    mapping.mkdir()
    (mapping / "0.10").write_text("4410021\n")  # GPU 0, GPU instance 10: the second 1g.10gb
    clock = SimClock()
    jobs = JobAccounting(
        JobsOptions(procfs=str(PROC), hpc_job_mapping_dir=str(mapping)), clock=clock
    )
    jobs.samples(GpuSnapshot(NvmlStatus(True), [mig_gpu(0.0, {})]))
    clock.t = 30.0
    idle = {gi: {"sm_active": 0.0} for gi in ("2", "3", "9", "10")}
    found = totals(as_series(jobs.samples(GpuSnapshot(NvmlStatus(True), [mig_gpu(3960.0, idle)]))))
    job = ("slurm", "4410021")
    assert of(found, job, "energy") == pytest.approx(3960 * 16 / 132)  # 480 J
    assert of(found, job, "allocated") == pytest.approx(30 * 16 / 132)
    assert of(found, job, "idle_allocated") == pytest.approx(30 * 16 / 132), "held, all idle"


def test_idle_below_is_a_fraction_and_a_bad_value_is_one_line() -> None:
    from agent.config import ConfigError, from_mapping

    config = from_mapping({"collectors": {"jobs": {"idle_below": 0.1, "ledger": "/x/j.jsonl"}}})
    assert config.collectors.jobs.idle_below == 0.1
    assert config.collectors.jobs.ledger_options().state_file == "/x/j.jsonl.state"
    with pytest.raises(ConfigError) as caught:
        from_mapping({"collectors": {"jobs": {"idle_below": 5}}})
    assert caught.value.problems == [
        "collectors.jobs.idle_below: must be a number from 0 to 1, got 5"
    ]


def test_the_time_a_gpu_is_lost_is_billed_to_nobody() -> None:
    clock = SimClock()
    jobs = JobAccounting(JobsOptions(procfs=str(PROC)), clock=clock)
    slurm = GpuProcess(SLURM, 1e9, 0.5)
    for t, joules, up in ((0.0, 0.0, True), (10.0, 7000.0, True), (20.0, 0.0, False)):
        clock.t = t
        reading = whole(joules, 0.5, slurm)
        reading.up = up
        jobs.samples(GpuSnapshot(NvmlStatus(True), [reading]))
    clock.t, back = 320.0, whole(7000.0 + 700 * 310, 0.5, slurm)  # back after 300 s lost
    jobs.samples(GpuSnapshot(NvmlStatus(True), [back]))
    clock.t = 330.0
    last = jobs.samples(GpuSnapshot(NvmlStatus(True), [whole(7000.0 + 700 * 320, 0.5, slurm)]))
    found = totals(as_series(last))
    assert of(found, SLURM_JOB, "allocated") == pytest.approx(20.0), "10 s before, 10 s after"
    assert of(found, SLURM_JOB, "energy") == pytest.approx(14000.0)
