"""Job attribution: /proc/<pid>/cgroup -> Slurm job, Kubernetes pod, container, systemd unit, host;
and dcgm-exporter's HPC job-mapping directory.

The cgroup texts are real captures (see tests/fixtures/proc-jobs/README.md for which file each
fixture pid copies); the Slurm hierarchy listings and Kepler's catalog lines are inline below.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.hw.cgroups import classify_path
from agent.hw.jobs import (
    HOST,
    HpcJobMapping,
    JobCache,
    JobRef,
    classify_cgroup,
    process_start_time,
    read_process_job,
)

FIXTURES = Path(__file__).parent / "fixtures"
PROC = FIXTURES / "proc-jobs"
MAPPING = FIXTURES / "hpc-job-mapping"


def pod(uid: str, container: str = "") -> JobRef:
    return JobRef("kubernetes", uid, container=container)


def ctr(container_id: str) -> JobRef:
    return JobRef("container", container_id)


FIXTURE_PIDS: dict[int, JobRef] = {
    1001: JobRef("slurm", "4824887", user="1000"),
    1002: JobRef("slurm", "4"),
    1003: JobRef("slurm", "1320003"),
    1004: HOST,
    1005: JobRef("systemd", "session-157.scope", user="20821"),
    1006: HOST,
    1007: HOST,
    1008: pod(
        "a36d0c1d-0b26-4451-8d80-9c195e004afa",
        "5dd96d5394ca930a854a390ea46f7515a8bc930123eb3251ba20f2708a38fc61",
    ),
    1009: pod(
        "045b1e35-7f13-11e7-ac42-0050568ffca0",
        "b5b6f2da8008be266864f896f93789762b2ce50792114a5c5f2cc3315af0bc70",
    ),
    1010: pod(
        "2105e389-7471-476e-a50f-6074cef29bbd",
        "d3d8ccf5cca91931c6285c1d7472c413dd5a7700fddc0aa9f89a9ac7008b003e",
    ),
    1011: pod(
        "dd1bf9d1-241d-47f5-8e25-12de83135812",
        "f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830",
    ),
    1012: pod(
        "8ca306fa-3c03-47fa-97dd-19979c345572",
        "d6d725b909f37c3e232aadfbafa950a58bfe7baa579ba8c47a12be88bb921607",
    ),
    1013: pod(
        "9493223b-520e-4a97-a45f-359dcf967006",
        "25d057a4c6c9555f2a0eb106e8896968c28f1c44aca4754174851aca7f89ad26",
    ),
    1014: pod(
        "042efd86-1f3b-4f2f-8736-f31c58e95bbc",
        "f33f47b0db740bb647cb3e7ac62d96c74966dbb99cbfaf4563bfd42d387e8b44",
    ),
    1015: pod(
        "fd698699-eabf-4c23-92ef-cf0bbdb78261",
        "2cc65c162ca1388b6b8d5ccfb701d22fc96675ccf8b2f1590c490c2c4039547f",
    ),
    1016: pod(
        "74ba62da-1a3d-11e7-bb11-080027cb0e22",
        "cb1eadb7abe3a6545e9856411207073277838e1bdc003337c2f8685faeedc32c",
    ),
    1017: pod(
        "74c13223-5a00-11e9-b385-42010a80018d",
        "34dc0b5e626f2c5c4c5170e34b10e7654ce36f0fcd532739f4445baabea03376",
    ),
    1018: pod(
        "f8a694f2-7c08-11e9-98da-000c29077430",
        "c04e0a88a1de067f25bece337d4dbb897396e0b623c2a65330850fc9823f1903",
    ),
    1019: pod(
        "1fe19bf5-e8ef-11e8-900c-52daee5a874d",
        "da31e536c8d61304a6d5998d163d12400a7a9a1003e1d86369e8fadb022fc17d",
    ),
    1020: ctr("31cb02944da7a12196a193cf0e0f6c226d7c453a1db62e65ba98287593a2ee30"),
    1021: ctr("9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"),
    1022: ctr("4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970"),
    1023: ctr("1f1d6e2d4940ddac13abd421a2617992bf89f0e0f9a902ed58278c5f843e9ae7"),
    1024: JobRef("systemd", "train.service"),
    1025: ctr("06dc5f321aad8726aa26559f16ec203bc099245bc44894b14a89fc02b022d1d5"),
    1026: pod(
        "51b64565-2b17-4d46-83ac-22e398f2f7fb",
        "65d752a38e1db784d521f48c3f1956f4f9a74ebb923377144f253f3aca9fa028",
    ),
    1027: HOST,
}


@pytest.mark.parametrize(("pid", "expected"), FIXTURE_PIDS.items())
def test_fixture_process_is_attributed(pid: int, expected: JobRef) -> None:
    assert read_process_job(PROC, pid, cache=JobCache()) == expected
    assert classify_cgroup((PROC / str(pid) / "cgroup").read_text()) == expected


def test_every_fixture_pid_has_an_expectation() -> None:
    on_disk = {int(p.name) for p in PROC.iterdir() if p.is_dir()}
    assert on_disk == set(FIXTURE_PIDS) | {1098, 1099}


# Kepler's catalog (internal/resource/container_test.go): one cgroup line or bare path each.
KEPLER_HEX = "1234567890abcdef" * 4
KEPLER: list[tuple[str, JobRef]] = [
    (
        "/docker-ce82d94d69e1fbbc7feeb66930c69e9b96d9f151f594773e5d0e342741d15437",
        ctr("ce82d94d69e1fbbc7feeb66930c69e9b96d9f151f594773e5d0e342741d15437"),
    ),
    (
        "/docker/ce82d94d69e1fbbc7feeb66930c69e9b96d9f151f594773e5d0e342741d15437",
        ctr("ce82d94d69e1fbbc7feeb66930c69e9b96d9f151f594773e5d0e342741d15437"),
    ),
    (f"/crio-{KEPLER_HEX}", ctr(KEPLER_HEX)),
    (f"/libpod-{KEPLER_HEX}", ctr(KEPLER_HEX)),
    (f"/containerd/{KEPLER_HEX}", ctr(KEPLER_HEX)),
    ("/system.slice/ssh.service", JobRef("systemd", "ssh.service")),
    ("/system.slice/user.slice", HOST),
    (
        "0::/system.slice/docker-fd9d0ea06257a9780827cbc7fd92e3812a54fca26d63e191b73610d5d48b9cbd"
        ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice"
        "/kubelet-kubepods-besteffort-podeab5a334_93fe_48a8_b139_9e8079c1f163.slice"
        "/cri-containerd-99f3a16ea25b7724cb56a4f0c0df1113ad9474fbf5545bead97fd5c7f61c13f4.scope",
        pod(
            "eab5a334-93fe-48a8-b139-9e8079c1f163",
            "99f3a16ea25b7724cb56a4f0c0df1113ad9474fbf5545bead97fd5c7f61c13f4",
        ),
    ),
    (
        "1:name=systemd:/kubepods.slice/kubepods-burstable.slice"
        "/kubepods-burstable-podd0511cd2_29d2_4215_be0f_f77bc0609d99.slice"
        "/crio-f93ee491b8ed2680d5a909eb098b14a9430173b57ca1c4efedd8768566d67e8e.scope",
        pod(
            "d0511cd2-29d2-4215-be0f-f77bc0609d99",
            "f93ee491b8ed2680d5a909eb098b14a9430173b57ca1c4efedd8768566d67e8e",
        ),
    ),
    (
        "0::/kubepods.slice/kubepods-burstable.slice"
        "/kubepods-burstable-pod2c9f8a79_5391_454b_88cb_86190881cb96.slice"
        "/crio-a09343ca97901516c25036e2b954421254f8c68b384b536064e8999f0c4ed18d.scope",
        pod(
            "2c9f8a79-5391-454b-88cb-86190881cb96",
            "a09343ca97901516c25036e2b954421254f8c68b384b536064e8999f0c4ed18d",
        ),
    ),
    (
        "13:hugetlb:/system.slice"
        "/docker-2fa3e04b676df750842faf017052dd37ea0cc5bc7259a3487a1718c7fe100c94.scope",
        ctr("2fa3e04b676df750842faf017052dd37ea0cc5bc7259a3487a1718c7fe100c94"),
    ),
    (
        "kubelet/kubepods/besteffort/podbdd4097d-6795-404e-9bd8-6a1383386198"
        "/c79788e0da15a6597263eb2b9c51d05dd1a9a1d08c53c1161dc8c45d2dac6b38",
        pod(
            "bdd4097d-6795-404e-9bd8-6a1383386198",
            "c79788e0da15a6597263eb2b9c51d05dd1a9a1d08c53c1161dc8c45d2dac6b38",
        ),
    ),
    (
        "/sys/fs/cgroup/systemd/system.slice/containerd.service"
        "/kubepods-burstable-poda3b200c9_db51_40b4_9d2d_53f8fdf80d7f.slice:cri-containerd:"
        "286b15051ec43375190802e1f40562536980a8fd97e75bb89c7f2eec6f995f17",
        pod(
            "a3b200c9-db51-40b4-9d2d-53f8fdf80d7f",
            "286b15051ec43375190802e1f40562536980a8fd97e75bb89c7f2eec6f995f17",
        ),
    ),
    (
        "13:memory:/system.slice/containerd.service"
        "/kubepods-besteffort-pod0043435f_1854_4327_b76b_730f681a781d.slice:cri-containerd:"
        "01fd96f7ad292b02a8317cde4ecb8c7ef3cc06ffdd113f13410e0837eb2b2a20",
        pod(
            "0043435f-1854-4327-b76b-730f681a781d",
            "01fd96f7ad292b02a8317cde4ecb8c7ef3cc06ffdd113f13410e0837eb2b2a20",
        ),
    ),
    (
        "11:blkio:/kubepods/burstable/podf6adb0af-0855-4bab-b25b-c853f18d0ce2"
        "/35b97177dada20362ab90d90ac63cd54e8a41cf87bea34f270631b6da17f4a93",
        pod(
            "f6adb0af-0855-4bab-b25b-c853f18d0ce2",
            "35b97177dada20362ab90d90ac63cd54e8a41cf87bea34f270631b6da17f4a93",
        ),
    ),
    (
        "0::/kubepods/burstable/pod5a89bcaa-3509-4375-83e1-b9e7a5712123"
        "/a069581483b00a498b3ba172612ffed06b3275a043bf3895c1b19e783e2793ee",
        pod(
            "5a89bcaa-3509-4375-83e1-b9e7a5712123",
            "a069581483b00a498b3ba172612ffed06b3275a043bf3895c1b19e783e2793ee",
        ),
    ),
    (
        "0::/kubepods.slice/kubepods-pod7922aa99_d4aa_4885_a953_82976860b23a.slice"
        "/crio-1c33afbc9e5aa6c69150d1af05254b562a4b17c313fc6153e3625cf456922bfe.scope",
        pod(
            "7922aa99-d4aa-4885-a953-82976860b23a",
            "1c33afbc9e5aa6c69150d1af05254b562a4b17c313fc6153e3625cf456922bfe",
        ),
    ),
    (
        "0::/user.slice/user-1000.slice/user@1000.service/user.slice"
        "/libpod-3f05ee050f82c0145f1d88c94269c39dff0f07dbf8bba20aafd54b3a75dcaecc.scope/container",
        JobRef(
            "container",
            "3f05ee050f82c0145f1d88c94269c39dff0f07dbf8bba20aafd54b3a75dcaecc",
            user="1000",
        ),
    ),
    (
        "0::/system.slice/kepler.service"
        "/libpod-payload-8e363eb2287da4ccc9f52ffc5de11252ac5fe707e3ddb917a3c0bdf9bb64165b",
        ctr("8e363eb2287da4ccc9f52ffc5de11252ac5fe707e3ddb917a3c0bdf9bb64165b"),
    ),
    (
        "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice"
        "/kubelet-kubepods-burstable-pod3cae2e45_052c_4b11_80d3_4d7b2d2d3464.slice"
        "/cri-containerd-2b180104511194aab36fd295d3e217439f3ddb5bc88277f37b4952abee85c40e.scope",
        pod(
            "3cae2e45-052c-4b11-80d3-4d7b2d2d3464",
            "2b180104511194aab36fd295d3e217439f3ddb5bc88277f37b4952abee85c40e",
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), KEPLER)
def test_kepler_catalog_line(text: str, expected: JobRef) -> None:
    is_line = text.split("/", 1)[0].endswith(":")
    assert (classify_cgroup(text) if is_line else classify_path(text)) == expected


SLURM_11 = JobRef("slurm", "11", user="20821")
V1_HIERARCHY = {  # directories of slurm-v1-hierarchy (memory, cpuacct, cpuset); 177837 ran in
    "slurm": HOST,  # job_11/step_0/task_0
    "slurm/uid_20821": HOST,
    "slurm/uid_20821/job_10": JobRef("slurm", "10", user="20821"),
    "slurm/uid_20821/job_10/step_batch/task_0": JobRef("slurm", "10", user="20821"),
    "slurm/uid_20821/job_11": SLURM_11,
    "slurm/uid_20821/job_11/step_0": SLURM_11,
    "slurm/uid_20821/job_11/step_0/task_0": SLURM_11,
    "slurm/uid_20821/job_11/step_0/task_1": SLURM_11,
    "slurm/uid_20821/job_11/step_batch/task_0": SLURM_11,
    "slurm/uid_20821/job_11/step_extern/task_0": SLURM_11,
}


@pytest.mark.parametrize(("path", "expected"), V1_HIERARCHY.items())
@pytest.mark.parametrize("controllers", ["memory", "cpu,cpuacct", "cpuset"])
def test_slurm_v1_hierarchy(path: str, expected: JobRef, controllers: str) -> None:
    assert classify_cgroup(f"4:{controllers}:/{path}\n") == expected


SLURM_4 = JobRef("slurm", "4")
USER_MANAGER = JobRef("systemd", "user@20821.service", user="20821")
V2_HIERARCHY = {  # directories of slurm-v2-hierarchy
    "system.slice": HOST,
    "system.slice/slurmstepd.scope": HOST,
    "system.slice/slurmstepd.scope/system": HOST,  # slurmstepd itself (pid 43310)
    "system.slice/slurmstepd.scope/job_4": SLURM_4,
    "system.slice/slurmstepd.scope/job_4/step_0/slurm": SLURM_4,  # the step's stepd, in the job
    "system.slice/slurmstepd.scope/job_4/step_0/user/task_0": SLURM_4,
    "system.slice/slurmstepd.scope/job_4/step_extern/slurm": SLURM_4,
    "system.slice/slurmstepd.scope/job_4/step_extern/user/task_0": SLURM_4,
    "user.slice": HOST,
    "user.slice/user-20821.slice": HOST,
    "user.slice/user-20821.slice/session-133.scope": JobRef(
        "systemd", "session-133.scope", user="20821"
    ),
    "user.slice/user-20821.slice/user@20821.service": USER_MANAGER,
    "user.slice/user-20821.slice/user@20821.service/init.scope": USER_MANAGER,
    "user.slice/user-20821.slice/user@20821.service/background.slice": USER_MANAGER,
    "user.slice/user-20821.slice/user@20821.service/app.slice/dbus.socket": JobRef(
        "systemd", "dbus.socket", user="20821"
    ),
}


@pytest.mark.parametrize(("path", "expected"), V2_HIERARCHY.items())
def test_slurm_v2_hierarchy(path: str, expected: JobRef) -> None:
    assert classify_cgroup(f"0::/{path}\n") == expected


def test_hybrid_prefers_the_job_over_the_session_the_unified_line_shows() -> None:
    text = (
        "0::/user.slice/user-1000.slice/session-18.scope\n"
        "6:memory:/slurm/uid_1000/job_4824887/step_0/task_0\n"
        "1:name=systemd:/user.slice/user-1000.slice/session-18.scope\n"
    )
    assert classify_cgroup(text) == JobRef("slurm", "4824887", user="1000")


def test_equal_rank_goes_to_the_unified_line_then_memory() -> None:
    v1 = "3:pids:/system.slice/b.service\n5:memory:/system.slice/a.service\n"
    assert classify_cgroup(v1) == JobRef("systemd", "a.service")
    assert classify_cgroup("0::/system.slice/c.service\n" + v1) == JobRef("systemd", "c.service")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "0::/system.slice/slurmstepd.scope/job_77/step_0/user/task_0 (deleted)\n",
            JobRef("slurm", "77"),
        ),
        ("0::/job_4/step_0/user/task_0\n", SLURM_4),  # seen from inside the job's cgroupns
        (
            "0::/system.slice/gpu07_slurmstepd.scope/job_9/step_batch/user/task_0\n",
            JobRef("slurm", "9"),
        ),  # multiple-slurmd naming
        (
            "5:memory:/slurm_gpu07/uid_20821/job_12/step_0/task_0\n",
            JobRef("slurm", "12", user="20821"),
        ),
        (
            "0::/kubepods.slice/kubepods-burstable.slice"
            "/kubepods-burstable-pod6c9ee51d8e5b8f1b0cc1b1a8a0e3d9f2.slice\n",
            pod("6c9ee51d8e5b8f1b0cc1b1a8a0e3d9f2"),
        ),  # static pod: md5 UID, no container
        ("0::/", HOST),
        ("0::/init.scope\n", HOST),
        ("0::/batch/queue-7/worker\n", HOST),
        ("0::/kubepods/besteffort/podnot-a-uid/worker\n", HOST),
        ("", HOST),
        ("memory /slurm/uid_1/job_1\n", HOST),
    ],
)
def test_other_shapes(text: str, expected: JobRef) -> None:
    assert classify_cgroup(text) == expected


SCHEDULERS = {"slurm", "kubernetes", "container", "systemd", "host"}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_classify_never_raises_on_arbitrary_text(text: str) -> None:
    assert classify_cgroup(text).scheduler in SCHEDULERS
    assert classify_path(text).scheduler in SCHEDULERS


COMPONENTS = ["", "..", "slurm", "job_3", "step_0", "uid_7", "kubepods", "podx", "a.service"]
COMPONENTS += ["init.scope", "user-5.slice", "slurmstepd.scope", f"docker-{'ab' * 32}.scope"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(COMPONENTS)))
def test_classify_never_raises_on_mixed_components(parts: list[str]) -> None:
    assert classify_path("/" + "/".join(parts)).scheduler in SCHEDULERS


def test_vanished_garbage_and_missing_processes_are_none(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cache = JobCache()
    assert read_process_job(PROC, 1098, cache) is None  # stat but no cgroup: it exited
    assert read_process_job(PROC, 1099, cache) is None  # no well-formed line
    assert read_process_job(PROC, 4242, cache) is None  # no such pid
    assert read_process_job(PROC, 0, cache) is None
    assert read_process_job(PROC / "nowhere", 1001, cache) is None
    assert caplog.records == []
    assert len(cache) == 0


def test_unreadable_cgroup_files_are_none(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cgroup").write_bytes(b"0::/system.slice/\xff\xfe.service\n")
    (tmp_path / "8" / "cgroup").mkdir(parents=True)  # EISDIR stands in for EACCES (CI is root)
    assert read_process_job(tmp_path, 7, JobCache()) is None
    assert read_process_job(tmp_path, 8, JobCache()) is None


def test_start_time_is_field_22_even_with_parentheses_in_comm() -> None:
    assert process_start_time(PROC / "1005") == 81238000
    assert process_start_time(PROC / "1098") == 82500000
    assert process_start_time(PROC / "4242") is None


def copy_pid(src: int, root: Path, pid: int) -> Path:
    shutil.copytree(PROC / str(src), root / str(pid))
    return root / str(pid)


def set_start_time(pid_dir: Path, start: int) -> None:
    head, _, rest = (pid_dir / "stat").read_text().rpartition(")")
    fields = rest.split()
    fields[19] = str(start)
    (pid_dir / "stat").write_text(head + ") " + " ".join(fields) + "\n")


def test_a_long_running_process_is_read_once(tmp_path: Path) -> None:
    pid_dir = copy_pid(1001, tmp_path, 500)
    cache = JobCache()
    assert read_process_job(tmp_path, 500, cache) == JobRef("slurm", "4824887", user="1000")
    (pid_dir / "cgroup").write_text("0::/system.slice/other.service\n")  # not read again
    assert read_process_job(tmp_path, 500, cache) == JobRef("slurm", "4824887", user="1000")


def test_a_reused_pid_is_read_again(tmp_path: Path) -> None:
    pid_dir = copy_pid(1001, tmp_path, 500)
    cache = JobCache()
    assert read_process_job(tmp_path, 500, cache) == JobRef("slurm", "4824887", user="1000")
    shutil.copy(PROC / "1013" / "cgroup", pid_dir / "cgroup")
    set_start_time(pid_dir, 99_000_000)  # a new process got pid 500
    assert read_process_job(tmp_path, 500, cache) == FIXTURE_PIDS[1013]


def test_without_a_start_time_nothing_is_cached(tmp_path: Path) -> None:
    pid_dir = copy_pid(1002, tmp_path, 501)
    (pid_dir / "stat").unlink()
    cache = JobCache()
    assert read_process_job(tmp_path, 501, cache) == JobRef("slurm", "4")
    assert len(cache) == 0
    shutil.copy(PROC / "1024" / "cgroup", pid_dir / "cgroup")
    assert read_process_job(tmp_path, 501, cache) == JobRef("systemd", "train.service")


def test_cache_entries_expire_and_are_bounded(tmp_path: Path) -> None:
    now = [1000.0]
    cache = JobCache(max_entries=2, ttl_s=60.0, clock=lambda: now[0])
    dirs = [copy_pid(1002 + i, tmp_path, 600 + i) for i in range(3)]  # slurm 4, 1320003, host
    for pid in (600, 601, 602):
        read_process_job(tmp_path, pid, cache)
    assert len(cache) == 2  # 600 evicted
    shutil.copy(PROC / "1024" / "cgroup", dirs[0] / "cgroup")
    assert read_process_job(tmp_path, 600, cache) == JobRef("systemd", "train.service")
    shutil.copy(PROC / "1024" / "cgroup", dirs[2] / "cgroup")
    assert read_process_job(tmp_path, 602, cache) == HOST  # still cached
    now[0] += 61.0  # moved to another cgroup after the first read (pam_slurm_adopt)
    assert read_process_job(tmp_path, 602, cache) == JobRef("systemd", "train.service")


def test_exited_processes_do_not_pile_up_in_the_cache(tmp_path: Path) -> None:
    now = [1000.0]
    cache = JobCache(ttl_s=60.0, clock=lambda: now[0])
    for pid in range(700, 710):  # ten short-lived processes, never seen again
        copy_pid(1002, tmp_path, pid)
        read_process_job(tmp_path, pid, cache)
    assert len(cache) == 10
    now[0] += 61.0
    copy_pid(1002, tmp_path, 800)
    read_process_job(tmp_path, 800, cache)  # the next read sweeps the expired ones
    assert len(cache) == 1


def test_mapping_fixture_directory() -> None:
    mapping = HpcJobMapping(MAPPING)
    assert mapping.jobs() == {
        0: ["4824887"],
        1: ["4824887", "4824901"],
        3: ["4825012", "4825013"],
    }
    assert mapping.mig_jobs() == {}


def test_mapping_missing_directory_is_empty(tmp_path: Path) -> None:
    assert HpcJobMapping(tmp_path / "absent").jobs() == {}
    assert HpcJobMapping(tmp_path / "absent").mig_jobs() == {}


def test_mapping_skips_what_is_not_a_gpu_job_file(tmp_path: Path) -> None:
    for name in ("foo", "01", "+3", "-2", "1e5", "1.2.3", ".gitkeep"):
        (tmp_path / name).write_text("666\n")
    (tmp_path / "0").write_text("4831001\n")
    (tmp_path / "2").write_text("")  # empty: GPU 2 has no job, as in dcgm-exporter
    (tmp_path / "4").write_text("\n  \n\n")
    (tmp_path / "5").mkdir()
    os.mkfifo(tmp_path / "6")  # would block a reader
    (tmp_path / "7").write_bytes(b"\xff\xfe\x00garbage\n")
    (tmp_path / "8").write_text("4831002\n" * 20000)  # over 64 KiB
    (tmp_path / "9").write_text("job with spaces?\n\x01\x02\n4831003\n")
    (tmp_path / "2.1").write_text("4831004\n")  # MIG GPU 2, GPU instance 1
    mapping = HpcJobMapping(tmp_path)
    assert mapping.jobs() == {0: ["4831001"], 9: ["job", "4831003"]}
    assert mapping.mig_jobs() == {(2, 1): ["4831004"]}


def test_mapping_rereads_only_changed_files(tmp_path: Path) -> None:
    job_file = tmp_path / "0"
    job_file.write_text("4830001\n")
    mapping = HpcJobMapping(tmp_path)
    assert mapping.jobs() == {0: ["4830001"]}
    before = job_file.stat()
    job_file.write_text("4830002\n")  # same size, same inode; put the old mtime back
    os.utime(job_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert mapping.jobs() == {0: ["4830001"]}  # not read again
    os.utime(job_file, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert mapping.jobs() == {0: ["4830002"]}


def test_mapping_follows_prolog_and_epilog(tmp_path: Path) -> None:
    mapping = HpcJobMapping(tmp_path)
    (tmp_path / "1").write_text("4830100\n")
    assert mapping.jobs() == {1: ["4830100"]}
    (tmp_path / "1").unlink()  # epilog
    assert mapping.jobs() == {}
    (tmp_path / "1").write_text("4830101\n4830102\n")  # next job's prolog
    assert mapping.jobs() == {1: ["4830101", "4830102"]}
    shutil.rmtree(tmp_path)
    assert mapping.jobs() == {}
