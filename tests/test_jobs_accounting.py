"""Job accounting: which job holds which GPU, its memory, and energy that adds up exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.collectors.job_options import JobsOptions
from agent.collectors.jobs import JobAccounting
from agent.hw import GpuDevice, GpuProcess, GpuReading, GpuSnapshot, NvmlStatus
from tests.gpu_helpers import Series, as_series

PROC = Path(__file__).parent / "fixtures" / "proc-jobs"
SLURM, POD, DOCKER, VANISHED = 1003, 1013, 1023, 1098


def device(index: int) -> GpuDevice:
    return GpuDevice(
        index=index, uuid=f"GPU-{index:08d}", model="NVIDIA H100 80GB HBM3", pci_bus_id=""
    )


def reading(index: int, joules: float, *processes: GpuProcess) -> GpuReading:
    return GpuReading(device(index), energy_joules=joules, processes=list(processes))


def snapshot(*readings: GpuReading) -> GpuSnapshot:
    return GpuSnapshot(NvmlStatus(up=True), list(readings))


def proc(pid: int, gib: float | None = 20.0, sm: float | None = None) -> GpuProcess:
    return GpuProcess(pid, None if gib is None else gib * 2**30, sm)


def energy(series: Series) -> dict[tuple[str, ...], float]:
    return {
        labels: v for (n, labels), v in series.items() if n == "suanli_job_gpu_energy_joules_total"
    }


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_processes_are_traced_to_their_jobs_with_memory_per_job() -> None:
    jobs = JobAccounting(JobsOptions(procfs=str(PROC)))
    series = as_series(
        jobs.samples(
            snapshot(
                reading(0, 1e6, proc(SLURM, 60.0), proc(POD, 10.0), proc(POD, 5.0)),
                reading(1, 1e6),
            )
        )
    )
    info = {
        labels[2:4] for (n, labels) in series if n == "suanli_gpu_job_info" and labels[0] == "0"
    }
    assert info == {("slurm", "1320003"), ("kubernetes", "9493223b-520e-4a97-a45f-359dcf967006")}
    memory = {
        labels[2:4]: v
        for (n, labels), v in series.items()
        if n == "suanli_job_gpu_memory_used_bytes"
    }
    assert memory[("kubernetes", "9493223b-520e-4a97-a45f-359dcf967006")] == 15 * 2**30
    processes = {labels[0]: v for (n, labels), v in series.items() if n == "suanli_gpu_processes"}
    assert processes == {"0": 3.0, "1": 0.0}


def test_a_vanished_process_is_unknown_not_an_error() -> None:
    jobs = JobAccounting(JobsOptions(procfs=str(PROC)))
    series = as_series(jobs.samples(snapshot(reading(0, 1.0, proc(VANISHED)))))
    info = [labels[2:4] for (n, labels) in series if n == "suanli_gpu_job_info"]
    assert info == [("host", "unknown")]


def test_energy_is_split_by_sm_share_and_idle_gpus_go_to_none() -> None:
    clock = Clock()
    jobs = JobAccounting(JobsOptions(procfs=str(PROC)), clock=clock)
    jobs.samples(snapshot(reading(0, 1000.0), reading(1, 5000.0)))
    clock.t = 5.0
    series = as_series(
        jobs.samples(
            snapshot(
                reading(0, 4000.0, proc(SLURM, sm=0.6), proc(DOCKER, sm=0.2)),
                reading(1, 5350.0),
            )
        )
    )
    joules = energy(series)
    assert joules[("slurm", "1320003")] == pytest.approx(2250.0)
    assert joules[
        ("container", "1f1d6e2d4940ddac13abd421a2617992bf89f0e0f9a902ed58278c5f843e9ae7")
    ] == pytest.approx(750.0)
    assert joules[("none", "none")] == pytest.approx(350.0)


def test_without_per_process_samples_the_energy_is_shared_equally() -> None:
    clock = Clock()
    jobs = JobAccounting(JobsOptions(procfs=str(PROC)), clock=clock)
    quiet = (proc(SLURM), proc(POD), proc(DOCKER))  # NVML gave no utilisation samples
    jobs.samples(snapshot(reading(0, 0.0, *quiet), reading(1, 0.0)))
    clock.t = 5.0
    joules = energy(as_series(jobs.samples(snapshot(reading(0, 900.0, *quiet), reading(1, 90.0)))))
    assert joules == pytest.approx(
        {
            ("slurm", "1320003"): 300.0,
            ("kubernetes", "9493223b-520e-4a97-a45f-359dcf967006"): 300.0,
            (
                "container",
                "1f1d6e2d4940ddac13abd421a2617992bf89f0e0f9a902ed58278c5f843e9ae7",
            ): 300.0,
            ("none", "none"): 90.0,
        }
    )


def test_a_scheduler_mapping_directory_adds_jobs_per_gpu(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping"
    mapping.mkdir()
    (mapping / "1").write_text("77001\n")
    jobs = JobAccounting(JobsOptions(procfs=str(PROC), hpc_job_mapping_dir=str(mapping)))
    series = as_series(jobs.samples(snapshot(reading(0, 1.0), reading(1, 1.0))))
    info = [labels[:1] + labels[2:4] for (n, labels) in series if n == "suanli_gpu_job_info"]
    assert info == [("1", "slurm", "77001")]


def test_ended_jobs_are_forgotten_after_the_retention_and_counters_never_drop() -> None:
    clock = Clock()
    jobs = JobAccounting(JobsOptions(procfs=str(PROC), retention=60.0), clock=clock)
    jobs.samples(snapshot(reading(0, 0.0, proc(SLURM))))
    clock.t = 10.0
    first = energy(as_series(jobs.samples(snapshot(reading(0, 7000.0, proc(SLURM))))))
    assert first[("slurm", "1320003")] == 7000.0
    clock.t = 20.0
    after = energy(as_series(jobs.samples(snapshot(reading(0, 8000.0)))))
    assert after == {("slurm", "1320003"): 7000.0, ("none", "none"): 1000.0}
    clock.t = 200.0
    later = energy(as_series(jobs.samples(snapshot(reading(0, 9000.0)))))
    assert later == {("none", "none"): 2000.0}


def test_a_gpu_energy_counter_reset_is_not_billed_to_anyone() -> None:
    jobs = JobAccounting(JobsOptions(procfs=str(PROC)))
    first = as_series(jobs.samples(snapshot(reading(0, 5000.0, proc(SLURM)))))
    assert energy(first) == {("slurm", "1320003"): 0.0}, "a job's counter starts at 0"
    series = as_series(jobs.samples(snapshot(reading(0, 10.0, proc(SLURM)))))
    assert energy(series) == {("slurm", "1320003"): 0.0}


def test_per_process_series_are_opt_in_and_capped(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    shutil.copytree(PROC, root)
    processes = [proc(pid, gib=float(pid - 1000)) for pid in (1001, 1002, 1003, 1005, 1013)]
    default = as_series(
        JobAccounting(JobsOptions(procfs=str(root))).samples(snapshot(reading(0, 1.0, *processes)))
    )
    assert not [k for k in default if k[0] == "suanli_gpu_process_memory_used_bytes"]
    capped = JobAccounting(JobsOptions(procfs=str(root), per_process=True, per_process_limit=2))
    series = as_series(capped.samples(snapshot(reading(0, 1.0, *processes))))
    pids = sorted(
        labels[2] for (n, labels) in series if n == "suanli_gpu_process_memory_used_bytes"
    )
    assert pids == ["1005", "1013"], "the two biggest holders of memory"


def test_a_pod_gets_its_namespace_name_and_container_from_the_runtime(tmp_path: Path) -> None:
    import json

    cid = "25d057a4c6c9555f2a0eb106e8896968c28f1c44aca4754174851aca7f89ad26"  # pid 1013's container
    bundle = tmp_path / "run/containerd/io.containerd.runtime.v2.task/k8s.io" / cid
    bundle.mkdir(parents=True)
    annotations = {
        "io.kubernetes.cri.sandbox-namespace": "llm-serving",
        "io.kubernetes.cri.sandbox-name": "qwen-72b-infer-7d9f8",
        "io.kubernetes.cri.container-name": "vllm",
    }
    (bundle / "config.json").write_text(json.dumps({"annotations": annotations}))
    jobs = JobAccounting(JobsOptions(procfs=str(PROC), host_root=str(tmp_path)))
    series = as_series(jobs.samples(snapshot(reading(0, 1.0, proc(POD)))))
    (info,) = [labels for (n, labels) in series if n == "suanli_gpu_job_info"]
    assert info[2:] == (
        "kubernetes",
        "9493223b-520e-4a97-a45f-359dcf967006",
        "",
        "llm-serving",
        "qwen-72b-infer-7d9f8",
        "vllm",
    )


def test_energy_is_conserved_over_an_hour_of_jobs_starting_and_ending(tmp_path: Path) -> None:
    from tests.gpu_helpers import by_gpu, node

    gpus = node("jobs-churn", xid_events=False, jobs_procfs=str(tmp_path / "proc"))
    start = by_gpu(gpus.at(0.0), "suanli_gpu_energy_joules_total")
    jobs_seen: set[tuple[str, ...]] = set()
    for t in range(15, 3601, 15):
        series = gpus.at(float(t))
        jobs_seen |= {k[2:4] for (n, k) in series if n == "suanli_gpu_job_info"}
    end = by_gpu(series, "suanli_gpu_energy_joules_total")
    drawn = sum(end[g] - start[g] for g in start)
    billed = energy(series)
    assert sum(billed.values()) == pytest.approx(drawn, rel=1e-3)
    assert billed[("none", "none")] > 0, "GPUs sat idle between jobs"
    assert {("slurm", "3001001"), ("slurm", "3001017"), ("slurm", "3001018")} <= jobs_seen
    assert {k for k in billed if k != ("none", "none")} == jobs_seen
    assert billed[("slurm", "3001001")] > billed[("slurm", "3001044")], "an idle job draws little"
