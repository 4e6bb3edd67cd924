"""Jobs in fake scenarios: NVML processes and their utilisation, and the procfs they live in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.hw.cgroups import classify_cgroup
from agent.hw.jobs import JobCache, process_start_time, read_process_job
from suanli_sim.binding import pynvml as P
from suanli_sim.fake_models import MIB
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_processes import HZ, PID_HIGH, PID_LOW, boot_ticks, scenario_processes
from suanli_sim.fake_procfs import FakeProcfs, cgroup_text, write_procfs
from suanli_sim.fake_scenario import Scenario, ScenarioError, load_scenario, parse_scenario

NA = P.NVML_VALUE_NOT_AVAILABLE_uint.value


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def started(scenario: Scenario | str, t: float = 0.0) -> tuple[FakeNvml, Clock]:
    clock = Clock(t)
    nv = FakeNvml(load_scenario(scenario) if isinstance(scenario, str) else scenario, clock=clock)
    nv.nvmlInit()
    return nv, clock


def pids(nv: FakeNvml, gpu: int) -> list[int]:
    return [p.pid for p in nv.nvmlDeviceGetComputeRunningProcesses(nv.handles[gpu])]


def last_tick(nv: FakeNvml, clock: Clock) -> list[Any]:
    """Process utilisation samples of the current tick only, per GPU (None: NOT_FOUND)."""
    since = nv.epoch_us + int(clock.t - 1) * 1_000_000
    out: list[Any] = []
    for handle in nv.handles:
        try:
            out.append(nv.nvmlDeviceGetProcessUtilization(handle, since))
        except P.NVMLError_NotFound:
            out.append(None)
    return out


def one_job(job: str, gpus: str = "[{model: H100-SXM5-80GB, count: 2, workload: training}]") -> str:
    return f"name: t\nseed: 3\ngpus: {gpus}\njobs: [{job}]\n"


# --- processes over time ------------------------------------------------------------------


def test_processes_appear_and_vanish_with_their_jobs() -> None:
    nv, clock = started("jobs-churn", 100.0)
    assert pids(nv, 6) == [] and pids(nv, 7) == []
    clock.t = 120.0
    (jupyter,) = pids(nv, 6)
    clock.t = 1319.9
    assert pids(nv, 6) == [jupyter]
    clock.t = 1320.0
    assert pids(nv, 6) == []
    clock.t = 1500.0
    (triton,) = pids(nv, 6)
    assert triton != jupyter
    clock.t = 900.0
    assert len(pids(nv, 7)) == 1  # the 3-minute debug run
    clock.t = 1100.0
    assert pids(nv, 7) == []
    clock.t = 700.0
    assert len(pids(nv, 4)) == 2 and len(pids(nv, 5)) == 2  # two pods; two embedder ranks


def test_pids_are_deterministic_distinct_and_realistic() -> None:
    first = [p.pid for p in scenario_processes(load_scenario("jobs-churn"))]
    again = [p.pid for p in scenario_processes(parse_scenario(_text("jobs-churn")))]
    assert first == again
    assert len(set(first)) == len(first)
    assert all(PID_LOW <= pid < PID_HIGH for pid in first)
    reseeded = _text("jobs-churn").replace("seed: 2024", "seed: 2025")
    assert [p.pid for p in scenario_processes(parse_scenario(reseeded))] != first
    job = scenario_processes(load_scenario("h100-8"))[:4]  # Slurm job 1320003: GPUs 0-3
    assert [p.gpu for p in job] == [0, 1, 2, 3] and [p.task for p in job] == [0, 1, 2, 3]
    assert max(p.pid for p in job) - min(p.pid for p in job) < 40  # launched together


def _text(name: str) -> str:
    return (Path(__file__).parents[1] / "suanli_sim/scenarios" / f"{name}.yaml").read_text()


def test_processes_are_v3_shaped_and_v2_answers_the_same() -> None:
    nv, _ = started("mixed-faults", 10.0)
    handle = nv.handles[4]
    procs = nv.nvmlDeviceGetComputeRunningProcesses(handle)
    assert len(procs) == 2  # processes_per_gpu: 2
    for p in procs:
        assert isinstance(p, P.nvmlFriendlyObject)
        assert (p.gpuInstanceId, p.computeInstanceId) == (NA, NA)
        assert p.usedGpuMemory % MIB == 0 and p.usedGpuMemory > 10_000 * MIB
    v2 = nv.nvmlDeviceGetComputeRunningProcesses_v2(handle)
    assert [vars(p) for p in v2] == [vars(p) for p in procs]


def test_a_driver_without_v3_answers_only_v2() -> None:
    text = _text("h100-8") + "  - kind: missing_functions\n"
    text = text.replace("faults: []", "faults:")
    text += "    functions: [nvmlDeviceGetComputeRunningProcesses_v3]\n"
    nv, _ = started(parse_scenario(text))
    with pytest.raises(P.NVMLLibraryMismatchError):
        nv.nvmlDeviceGetComputeRunningProcesses(nv.handles[0])
    assert len(nv.nvmlDeviceGetComputeRunningProcesses_v2(nv.handles[0])) == 1


def test_a_job_driven_gpu_uses_what_its_processes_hold() -> None:
    nv, clock = started("jobs-churn")
    for t, gpu in ((700.0, 4), (700.0, 5), (2500.0, 7), (500.0, 7)):
        clock.t = t
        handle = nv.handles[gpu]
        held = sum(p.usedGpuMemory for p in nv.nvmlDeviceGetComputeRunningProcesses(handle))
        used = nv.nvmlDeviceGetMemoryInfo(handle, version=P.nvmlMemory_v2).used
        assert held <= used <= held + MIB
    clock.t = 700.0
    memory = sorted(p.usedGpuMemory for p in nv.nvmlDeviceGetComputeRunningProcesses(nv.handles[4]))
    assert memory == [30720 * MIB, 36864 * MIB]  # the pods' memory_mib


def test_jobs_on_mig_devices_carry_their_instance_ids() -> None:
    nv, _ = started("h100-mig", 30.0)
    (pod,) = nv.nvmlDeviceGetComputeRunningProcesses(nv.handles[0])
    device = nv.nvmlDeviceGetMigDeviceHandleByIndex(nv.handles[0], 0)
    assert (pod.gpuInstanceId, pod.computeInstanceId) == (nv.nvmlDeviceGetGpuInstanceId(device), 0)
    assert [p.pid for p in nv.nvmlDeviceGetComputeRunningProcesses(device)] == [pod.pid]
    other = nv.nvmlDeviceGetMigDeviceHandleByIndex(nv.handles[0], 1)
    assert nv.nvmlDeviceGetComputeRunningProcesses(other) == []
    used = nv.nvmlDeviceGetMemoryInfo(device).used
    assert pod.usedGpuMemory <= used <= pod.usedGpuMemory + 100 * MIB
    with pytest.raises(P.NVMLError_NotSupported):
        nv.nvmlDeviceGetProcessUtilization(nv.handles[0], 0)


# --- utilisation --------------------------------------------------------------------------


def test_process_utilisation_adds_up_to_the_gpu_s() -> None:
    nv, clock = started("jobs-churn")
    checked = 0
    for t in range(600, 3600, 37):
        clock.t = float(t)
        for handle, samples in zip(nv.handles, last_tick(nv, clock), strict=True):
            rates = nv.nvmlDeviceGetUtilizationRates(handle)
            if samples is None:
                assert rates.gpu == 0 or not pids(nv, handle.index)
                continue
            assert sum(s.smUtil for s in samples) == rates.gpu
            assert sum(s.memUtil for s in samples) <= rates.memory
            assert {s.pid for s in samples} <= set(pids(nv, handle.index))
            checked += len(samples) > 1
    assert checked > 10  # shared GPUs were among them


def test_a_shared_gpu_is_split_by_a_steady_weight_per_job() -> None:
    nv, clock = started("jobs-churn")
    totals: dict[int, int] = {}
    for t in range(700, 2300, 5):
        clock.t = float(t)
        for s in last_tick(nv, clock)[4] or []:
            totals[s.pid] = totals.get(s.pid, 0) + s.smUtil
    first, second = totals.values()
    assert 0.2 < first / (first + second) < 0.8


def test_samples_since_a_timestamp_are_means_with_the_last_busy_tick() -> None:
    nv, clock = started("h100-8", 130.0)
    handle = nv.handles[4]
    (sample,) = nv.nvmlDeviceGetProcessUtilization(handle, nv.epoch_us + 119_500_000)
    assert isinstance(sample, P.c_nvmlProcessUtilizationSample_t)
    utils = []
    for t in range(120, 131):
        clock.t = float(t)
        utils.append(nv.nvmlDeviceGetUtilizationRates(handle).gpu)
    assert sample.smUtil == round(sum(utils) / len(utils))
    assert sample.timeStamp == nv.epoch_us + 130_000_000
    assert (sample.encUtil, sample.decUtil) == (0, 0)
    with pytest.raises(P.NVMLError_NotFound):  # nothing newer than the last sample
        nv.nvmlDeviceGetProcessUtilization(handle, sample.timeStamp)
    with pytest.raises(TypeError):
        nv.nvmlDeviceGetProcessUtilization(handle, 1.5)  # type: ignore[arg-type]


def test_an_idle_job_holds_memory_but_no_sm_and_its_gpu_idles() -> None:
    nv, clock = started("h100-8", 120.0)
    idle = nv.handles[7]
    (proc,) = nv.nvmlDeviceGetComputeRunningProcesses(idle)
    assert proc.usedGpuMemory == 18432 * MIB
    with pytest.raises(P.NVMLError_NotFound):  # NVML lists only processes that did something
        nv.nvmlDeviceGetProcessUtilization(idle, 0)
    for t in range(0, 600, 13):
        clock.t = float(t)
        assert nv.nvmlDeviceGetUtilizationRates(idle).gpu == 0
        assert nv.nvmlDeviceGetPowerUsage(idle) < 120_000
        assert nv.nvmlDeviceGetUtilizationRates(nv.handles[6]).gpu > 0 or t % 600 >= 585


def test_an_idle_job_sharing_a_gpu_gets_no_share() -> None:
    nv, clock = started("jobs-churn", 3100.0)
    held = {p.pid for p in nv.nvmlDeviceGetComputeRunningProcesses(nv.handles[7])}
    samples = last_tick(nv, clock)[7]
    assert len(held) == 2 and samples is not None
    (busy,) = samples  # the benchmark container; job 3001044 idles beside it
    assert busy.smUtil == nv.nvmlDeviceGetUtilizationRates(nv.handles[7]).gpu


def test_gpus_without_busy_jobs_idle_and_with_them_work() -> None:
    nv, clock = started("jobs-churn")
    for t, gpu, busy in ((1600.0, 2, False), (1900.0, 2, True), (60.0, 5, False), (400.0, 5, True)):
        clock.t = t
        power = nv.nvmlDeviceGetPowerUsage(nv.handles[gpu]) / 1000
        assert (power > 150) is busy, (t, gpu, power)


# --- procfs -------------------------------------------------------------------------------

# Lines of the captures in ../shared/reference/cgroup (one process each), and the job that
# reproduces each: the fake must write them byte for byte.
K8S_V2 = (
    "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9493223b_520e_4a97_a45f_"
    "359dcf967006.slice/cri-containerd-25d057a4c6c9555f2a0eb106e8896968c28f1c44aca4754174851aca7f"
    "89ad26.scope\n"
)
K8S_V1_PATH = (
    "/kubepods/besteffort/pod74ba62da-1a3d-11e7-bb11-080027cb0e22/"
    "cb1eadb7abe3a6545e9856411207073277838e1bdc003337c2f8685faeedc32c"
)
K8S_V1 = "".join(
    f"{c}:{K8S_V1_PATH}\n"
    for c in (
        "11:devices",
        "10:memory",
        "9:hugetlb",
        "8:perf_event",
        "7:freezer",
        "6:pids",
        "5:cpu,cpuacct",
        "4:cpuset",
        "3:blkio",
        "2:net_cls,net_prio",
        "1:name=systemd",
    )
)
DOCKER_ID = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"
SLURM_V1_CEEMS = """12:freezer:/slurm/uid_1000/job_4824887
11:hugetlb:/
10:blkio:/
9:cpu,cpuacct:/slurm/uid_1000/job_4824887
8:perf_event:/
7:devices:/slurm/uid_1000/job_4824887
6:memory:/slurm/uid_1000/job_4824887
5:net_cls,net_prio:/slurm/uid_1000/job_4824887
4:cpuset:/slurm/uid_1000/job_4824887
3:rdma:/
2:pids:/user.slice/user-118.slice/session-18.scope
1:name=systemd:/user.slice/user-118.slice/session-18.scope
"""
CAPTURED = [
    (
        '{id: "1320003", scheduler: slurm-v2, gpus: [0]}',
        {"": "0::/system.slice/slurmstepd.scope/job_1320003/step_0/user/task_0\n"},
    ),
    (
        "{id: x, scheduler: kubernetes, qos: besteffort, gpus: [0], "
        "pod_uid: 9493223b-520e-4a97-a45f-359dcf967006, "
        "container_id: 25d057a4c6c9555f2a0eb106e8896968c28f1c44aca4754174851aca7f89ad26}",
        {"": K8S_V2},
    ),
    (
        "{id: x, scheduler: kubernetes-v1, qos: besteffort, gpus: [0], "
        f"pod_uid: 74ba62da-1a3d-11e7-bb11-080027cb0e22, container_id: {K8S_V1_PATH[-64:]}}}",
        {"": K8S_V1},
    ),
    (
        f"{{id: x, scheduler: docker, gpus: [0], container_id: {DOCKER_ID}}}",
        {"": f"0::/system.slice/docker-{DOCKER_ID}.scope\n"},
    ),
]


@pytest.mark.parametrize(("job", "expected"), CAPTURED)
def test_cgroup_files_reproduce_the_captured_lines(job: str, expected: dict[str, str]) -> None:
    scenario = parse_scenario(one_job(job))
    (proc,) = scenario_processes(scenario)
    assert cgroup_text(proc, scenario.seed) == expected[""]


def test_slurm_v1_has_the_captured_controllers_with_step_and_task_paths() -> None:
    scenario = parse_scenario(one_job('{id: "4824887", scheduler: slurm-v1, gpus: [0, 1]}'))
    second = scenario_processes(scenario)[1]
    ours = cgroup_text(second, scenario.seed).splitlines()
    for mine, captured in zip(ours, SLURM_V1_CEEMS.splitlines(), strict=True):
        number, controllers, path = captured.split(":", 2)
        assert mine.startswith(f"{number}:{controllers}:")
        if path.startswith("/slurm/"):
            assert mine.split(":", 2)[2] in (path, f"{path}/step_0", f"{path}/step_0/task_1")
        elif path == "/":
            assert mine.endswith(":/")
    assert "6:memory:/slurm/uid_1000/job_4824887/step_0/task_1" in ours
    assert "12:freezer:/slurm/uid_1000/job_4824887/step_0" in ours


LAYOUT_JOBS = {  # layout -> (job, what agent.hw.cgroups attributes it to)
    "slurm-v1": ('{id: "77", scheduler: slurm-v1, gpus: [0], user: 1005}', ("slurm", "77")),
    "slurm-v2": ('{id: "78", scheduler: slurm-v2, gpus: [0]}', ("slurm", "78")),
    "kubernetes": ("{id: p, scheduler: kubernetes, gpus: [0]}", ("kubernetes", "pod_uid")),
    "kubernetes-v1": ("{id: p, scheduler: kubernetes-v1, gpus: [0]}", ("kubernetes", "pod_uid")),
    "docker": ("{id: c, scheduler: docker, gpus: [0]}", ("container", "container_id")),
    "systemd": ("{id: train-llm, scheduler: systemd, gpus: [0]}", ("systemd", "train-llm.service")),
    "host": ("{id: h, scheduler: host, gpus: [0], user: 1001}", ("systemd", "session")),
}


@pytest.mark.parametrize("layout", sorted(LAYOUT_JOBS))
def test_every_layout_is_attributed_to_its_job(layout: str, tmp_path: Path) -> None:
    job, (scheduler, expected) = LAYOUT_JOBS[layout]
    scenario = parse_scenario(one_job(job))
    (proc,) = scenario_processes(scenario)
    write_procfs(scenario, tmp_path, 0.0)
    ref = read_process_job(tmp_path, proc.pid, JobCache())
    assert ref is not None and ref.scheduler == scheduler
    if expected == "session":
        assert ref.job.startswith("session-") and ref.user == "1001"
    else:
        assert ref.job == getattr(proc.job, expected, expected).replace("_", "-")
    assert classify_cgroup((tmp_path / str(proc.pid) / "cgroup").read_text()) == ref


def test_procfs_follows_jobs_and_removes_vanished_pids(tmp_path: Path) -> None:
    scenario = load_scenario("jobs-churn")
    clock = Clock(200.0)
    procfs = FakeProcfs(scenario, tmp_path, clock)
    (tmp_path / "self").write_text("not a pid")
    procfs.sync()
    jupyter = {p.pid for p in scenario_processes(scenario) if p.job.id == "jupyter-alice"}
    present = {int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()}
    active = {p.pid for p in scenario_processes(scenario) if p.active(200.0)}
    assert present == active and jupyter <= present
    clock.t = 1400.0
    procfs.sync()
    assert not any((tmp_path / str(pid)).exists() for pid in jupyter)
    assert (tmp_path / "self").read_text() == "not a pid"


def test_procfs_writes_are_idempotent(tmp_path: Path) -> None:
    scenario = load_scenario("h100-8")
    write_procfs(scenario, tmp_path, 10.0)
    files = sorted(tmp_path.glob("*/*"))
    before = {f: os.stat(f).st_ino for f in files}
    write_procfs(scenario, tmp_path, 20.0)  # a fresh writer: reads, compares, leaves alone
    FakeProcfs(scenario, tmp_path).sync(30.0)
    assert {f: os.stat(f).st_ino for f in sorted(tmp_path.glob("*/*"))} == before
    assert {f.name for f in files} == {"cgroup", "comm", "stat", "status"}
    assert not list(tmp_path.glob("*/.*"))  # no temporary files left


def test_stat_start_time_is_the_job_start_and_comm_and_status_match(tmp_path: Path) -> None:
    nv, _ = started("jobs-churn", 1800.0)
    nv.fake_procfs(tmp_path).sync()
    for proc in scenario_processes(nv.scenario):
        if not proc.active(1800.0):
            continue
        folder = tmp_path / str(proc.pid)
        started_at = process_start_time(folder)
        assert started_at is not None
        delay = started_at - boot_ticks(nv.scenario.seed) - round(proc.job.start * HZ)
        assert 0 < delay < HZ  # a few ticks after the job started
        stat = (folder / "stat").read_text().split()
        assert len(stat) == 52 and stat[1] == f"({proc.job.comm})" and stat[0] == str(proc.pid)
        assert (folder / "comm").read_text() == proc.job.comm + "\n"
        status = (folder / "status").read_text()
        uid = proc.job.user
        assert f"\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n" in status


# --- validation ---------------------------------------------------------------------------

BAD_JOBS = [
    ("{scheduler: slurm-v2, gpus: [0]}", "jobs[0].id: required"),
    ('{id: "1", scheduler: slurm-v2}', "jobs[0].gpus: required"),
    ('{id: "1", scheduler: pbs, gpus: [0]}', 'jobs[0].scheduler: unknown layout "pbs"'),
    ("{id: abc, scheduler: slurm-v1, gpus: [0]}", "jobs[0].id: a Slurm job id is a number"),
    ('{id: "1", scheduler: slurm-v2, gpus: [2]}', "jobs[0].gpus[0]: GPU 2 does not exist"),
    ('{id: "1", scheduler: slurm-v2, gpus: [0, 0]}', "jobs[0].gpus[1]: GPU 0 is listed twice"),
    ('{id: "1", scheduler: slurm-v2, gpus: []}', "jobs[0].gpus: at least one GPU"),
    ('{id: "1", scheduler: slurm-v2, gpus: ["0"]}', "jobs[0].gpus[0]: expected int"),
    (
        '{id: "1", scheduler: slurm-v2, gpus: [0], start: 9, end: 9}',
        "jobs[0].end: 9.0 is not after",
    ),
    ('{id: "1", scheduler: slurm-v2, gpus: [0], start: -1}', "jobs[0].start: must not be negative"),
    ('{id: "1", scheduler: slurm-v2, gpus: [0], end: soon}', "jobs[0].end: expected a number"),
    ('{id: "1", scheduler: slurm-v2, gpus: [0], idle: 1}', "jobs[0].idle: expected bool"),
    ('{id: "1", scheduler: slurm-v2, gpus: [0], memory_mib: 0}', "jobs[0].memory_mib: must be"),
    ('{id: "1", scheduler: slurm-v2, gpus: [0], user: -3}', "jobs[0].user: must be at least 0"),
    ('{id: "1", scheduler: slurm-v2, gpus: [0], processes_per_gpu: -1}', "processes_per_gpu"),
    ('{id: "1", scheduler: slurm-v2, gpus: [0], pod: x}', "jobs[0].pod: unknown key"),
    ('{id: "1", scheduler: slurm-v2, gpus: [0], mig: 0}', "jobs[0].gpus[0]: GPU 0 is not in MIG"),
    ('{id: "1", scheduler: slurm-v2, gpus: [0], comm: "a-very-long-process-name"}', ".comm: "),
    ("{id: p, scheduler: kubernetes, gpus: [0], pod_uid: nope}", "jobs[0].pod_uid: expected a"),
    ("{id: p, scheduler: kubernetes, gpus: [0], qos: gold}", "jobs[0].qos: unknown QoS class"),
    ("{id: p, scheduler: docker, gpus: [0], container_id: abc}", "jobs[0].container_id: expected"),
    ("{id: p, scheduler: kubernetes, gpus: [0], pod: Big_Pod}", "jobs[0].pod: expected a DNS"),
    ("{id: a b, scheduler: host, gpus: [0]}", "jobs[0].id: 'a b' must be non-empty"),
    (
        "{id: x, scheduler: host, gpus: [0]}, {id: x, scheduler: host, gpus: [1]}",
        "jobs[1].id: duplicate",
    ),
    ("[1]", "jobs[0]: expected a mapping"),
]


@pytest.mark.parametrize(("job", "expected"), BAD_JOBS)
def test_a_bad_job_is_one_line_naming_its_yaml_path(job: str, expected: str) -> None:
    gpus = "[{model: H100-SXM5-80GB}, {model: H100-SXM5-80GB}]"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(one_job(job, gpus), "bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml: ") and "\n" not in message
    assert expected in message, message


def test_a_job_on_a_mig_gpu_must_name_its_mig_device() -> None:
    gpus = "[{model: H100-SXM5-80GB, mig: true}]"
    with pytest.raises(ScenarioError, match=r"jobs\[0\].gpus\[0\]: GPU 0 is in MIG mode"):
        parse_scenario(one_job('{id: "1", scheduler: slurm-v2, gpus: [0]}', gpus))
    with pytest.raises(ScenarioError, match="GPU 0 has no MIG device 4 "):
        parse_scenario(one_job('{id: "1", scheduler: slurm-v2, gpus: [0], mig: 4}', gpus))


def test_legacy_processes_are_host_processes_that_always_run(tmp_path: Path) -> None:
    text = "name: t\ngpus: {model: L40S, workload: inference, processes: [{pid: 4242}]}\n"
    scenario = parse_scenario(text)
    nv, clock = started(scenario, 5000.0)
    (proc,) = nv.nvmlDeviceGetComputeRunningProcesses(nv.handles[0])
    assert (proc.pid, proc.usedGpuMemory) == (4242, None)
    write_procfs(scenario, tmp_path, 5000.0)
    assert (tmp_path / "4242" / "cgroup").read_text().startswith("0::/user.slice/user-0.slice/")
    busy = [t for t in range(5000, 5100) if _gpu_util(nv, clock, t) > 0]
    for t in busy[:10]:
        clock.t = float(t)
        (sample,) = last_tick(nv, clock)[0]
        assert sample.smUtil == nv.nvmlDeviceGetUtilizationRates(nv.handles[0]).gpu


def _gpu_util(nv: FakeNvml, clock: Clock, t: int) -> int:
    clock.t = float(t)
    return int(nv.nvmlDeviceGetUtilizationRates(nv.handles[0]).gpu)
