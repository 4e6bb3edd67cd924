"""The durable end-of-job record: one fsync'd JSON line per ended job, and a checkpoint so that
killing the agent mid-job, or around the end of a job, neither loses nor repeats anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.collectors.job_options import JobsOptions
from agent.collectors.jobs import JobAccounting
from agent.hw import GpuDevice, GpuProcess, GpuReading, GpuSnapshot, NvmlStatus
from tests.gpu_helpers import SimClock

PROC = Path(__file__).parent / "fixtures" / "proc-jobs"
SLURM = 1003  # the fixture's Slurm job 1320003 (cgroup v2: no uid in the path)
WATTS = 700.0  # the GPU draws 700 W all along: 7000 J per 10 s


def options(tmp_path: Path, **extra: object) -> JobsOptions:
    ledger = str(tmp_path / "jobs.jsonl")
    settings: dict[str, object] = {"ended_after": 30.0, "checkpoint_interval": 20.0}
    settings.update(extra)
    return JobsOptions(procfs=str(PROC), ledger=ledger, **settings)  # type: ignore[arg-type]


def cycle(jobs: JobAccounting, clock: SimClock, t: float, job_runs: bool) -> None:
    clock.t = t
    device = GpuDevice(0, "GPU-0", "NVIDIA H100 80GB HBM3", "")
    procs = [GpuProcess(SLURM, 2e10, 0.9)] if job_runs else []
    reading = GpuReading(device, energy_joules=1e6 + WATTS * t, processes=procs)
    jobs.samples(GpuSnapshot(NvmlStatus(True), [reading]))


def run(jobs: JobAccounting, clock: SimClock, times: range, job_until: float) -> None:
    for t in times:
        cycle(jobs, clock, float(t), t <= job_until)


def lines(tmp_path: Path) -> list[dict[str, object]]:
    text = (tmp_path / "jobs.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_an_ended_job_gets_one_line_with_its_totals(tmp_path: Path) -> None:
    clock = SimClock()
    jobs = JobAccounting(options(tmp_path), clock=clock)
    run(jobs, clock, range(0, 200, 10), job_until=100)
    (line,) = lines(tmp_path)
    assert line["job_id"] == "1320003" and line["scheduler"] == "slurm"
    assert line["user"] is None, "unknown under cgroup v2: null, not a guess"
    assert (line["start"], line["end"]) == (0.0, 100.0)
    assert line["gpus"] == ["GPU-0"]
    assert line["gpu_seconds"] == pytest.approx(100.0)  # seen at 0, 10, ..., 100
    assert line["energy_joules"] == pytest.approx(WATTS * 100)
    assert line["busy_gpu_seconds"] == 0.0 and line["idle_allocated_gpu_seconds"] == 0.0
    assert line["delivered_flops"] == {}, "no GPM on this reading: no FLOP known"


def test_killed_mid_job_and_restarted_nothing_is_lost_or_counted_twice(tmp_path: Path) -> None:
    clock = SimClock()
    first = JobAccounting(options(tmp_path), clock=clock)
    run(first, clock, range(0, 51, 10), job_until=100)  # checkpoints at 0, 20, 40; killed at 55
    second = JobAccounting(options(tmp_path), clock=clock)  # restarted at 70
    run(second, clock, range(70, 200, 10), job_until=100)
    (line,) = lines(tmp_path)
    assert line["gpu_seconds"] == pytest.approx(100.0)
    assert line["energy_joules"] == pytest.approx(WATTS * 100)
    assert line["start"] == 0.0


def test_killed_after_the_job_ended_but_before_its_line_the_line_comes_once(
    tmp_path: Path,
) -> None:
    clock = SimClock()
    first = JobAccounting(options(tmp_path), clock=clock)
    run(first, clock, range(0, 121, 10), job_until=100)  # ended at 100, line due after 130
    assert not (tmp_path / "jobs.jsonl").exists()
    second = JobAccounting(options(tmp_path), clock=clock)
    run(second, clock, range(200, 300, 10), job_until=100)
    (line,) = lines(tmp_path)
    assert (line["end"], line["gpu_seconds"]) == (100.0, pytest.approx(100.0))
    assert line["energy_joules"] == pytest.approx(WATTS * 100)


def test_killed_after_the_line_but_before_the_checkpoint_said_so_no_second_line(
    tmp_path: Path,
) -> None:
    clock = SimClock()
    first = JobAccounting(options(tmp_path, checkpoint_interval=50.0), clock=clock)
    run(first, clock, range(0, 141, 10), job_until=100)  # line at 140; last checkpoint at 100
    assert len(lines(tmp_path)) == 1
    second = JobAccounting(options(tmp_path), clock=clock)
    run(second, clock, range(150, 300, 10), job_until=100)
    assert len(lines(tmp_path)) == 1


def test_an_ended_jobs_counters_survive_a_restart_until_the_retention(tmp_path: Path) -> None:
    clock = SimClock()
    first = JobAccounting(options(tmp_path, retention=600.0), clock=clock)
    run(first, clock, range(0, 200, 10), job_until=100)
    first.close()
    second = JobAccounting(options(tmp_path, retention=600.0), clock=clock)
    clock.t = 210.0
    device = GpuDevice(0, "GPU-0", "NVIDIA H100 80GB HBM3", "")
    reading = GpuReading(device, energy_joules=1e6 + WATTS * 210, processes=[])
    series = second.samples(GpuSnapshot(NvmlStatus(True), [reading]))
    energy = {
        s.labels: s.value for s in series if s.spec.name == "suanli_job_gpu_energy_joules_total"
    }
    assert energy[("slurm", "1320003")] == pytest.approx(WATTS * 100)
    assert energy[("none", "none")] == pytest.approx(WATTS * 110), "from 100 s to 210 s"


def test_the_ledger_is_rotated_at_its_size(tmp_path: Path) -> None:
    clock = SimClock()
    jobs = JobAccounting(options(tmp_path, ledger_max_bytes=4096, ledger_keep=2), clock=clock)
    for n in range(60):  # 60 lines of about 330 bytes: more than three files hold
        base = n * 200
        for t in range(base, base + 200, 10):
            cycle(jobs, clock, float(t), t <= base + 100)
    rotated = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("jobs.jsonl"))
    assert rotated == ["jobs.jsonl", "jobs.jsonl.1", "jobs.jsonl.2", "jobs.jsonl.state"]
    kept = [tmp_path / name for name in rotated[:3]]
    assert all(path.stat().st_size <= 4096 for path in kept)
    assert sum(len(path.read_text().splitlines()) for path in kept) < 60, "the oldest went"


def test_a_ledger_that_cannot_be_written_is_retried_and_the_job_kept(tmp_path: Path) -> None:
    clock = SimClock()
    blocked = tmp_path / "not-yet"  # the ledger's directory is missing until t = 300
    settings = options(blocked, state_file=str(tmp_path / "state"), retention=60.0)
    jobs = JobAccounting(settings, clock=clock)
    run(jobs, clock, range(0, 300, 10), job_until=100)
    assert ("slurm", "1320003") in jobs.accountant.book.records, "kept past its retention"
    blocked.mkdir()
    run(jobs, clock, range(300, 320, 10), job_until=100)
    (line,) = lines(blocked)
    assert line["energy_joules"] == pytest.approx(WATTS * 100)
    assert ("slurm", "1320003") not in jobs.accountant.book.records, "written, then forgotten"


def test_a_job_back_before_its_line_could_be_written_goes_on(tmp_path: Path) -> None:
    clock = SimClock()
    blocked = tmp_path / "later"
    jobs = JobAccounting(options(blocked, state_file=str(tmp_path / "state")), clock=clock)
    run(jobs, clock, range(0, 150, 10), job_until=100)  # ended at 100; its line cannot be written
    run(jobs, clock, range(150, 200, 10), job_until=200)  # the same job id is back at 150
    blocked.mkdir()
    run(jobs, clock, range(200, 300, 10), job_until=190)
    (line,) = lines(blocked)
    assert (line["start"], line["end"]) == (0.0, 190.0)
    assert line["gpu_seconds"] == pytest.approx(150.0), "0-100 and 140-190 (the gap's last 10 s)"


def test_a_damaged_checkpoint_is_one_warning_and_a_fresh_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "jobs.jsonl.state").write_text('{"version": 1, "jobs": [{"job_id": ')
    clock = SimClock()
    jobs = JobAccounting(options(tmp_path), clock=clock)
    run(jobs, clock, range(0, 200, 10), job_until=100)
    (line,) = lines(tmp_path)
    assert line["gpu_seconds"] == pytest.approx(100.0)
    warnings = [r.getMessage() for r in caplog.records if "checkpoint" in r.getMessage()]
    assert len(warnings) == 1 and "starting from zero" in warnings[0]
