"""Faults as the real driver shows them, seen through a serving agent over time.

Each scenario runs `python -m agent --fake` and is scraped the way Prometheus scrapes it. The
fake answers as the driver does (docs/scenarios.md gives the source of each behaviour): a lost
GPU's handle answers GPU_IS_LOST to every query and its XID 79 arrives with that handle and in
the kernel log; a GPU that failed at boot is on the PCI bus but not enumerated; a hung GPU's
calls block only on its own handle, and calls take an H200's real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tests.scrapes import Series, matching, scrape, wait_for

if TYPE_CHECKING:
    from conftest import AgentProcess

StartAgent = Callable[..., "AgentProcess"]

EIGHT_H100 = "seed: 7\ngpus: {model: H100-SXM5-80GB, count: 8, workload: training}\n"
GPU2_BUS = "0000:3a:00.0"  # the third slot of an HGX H100 board (fake_models.HGX_BUS_IDS)


def start(agent_process: StartAgent, tmp_path: Path, body: str, *extra: str) -> AgentProcess:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("name: driver-faults\n" + EIGHT_H100 + body)
    return agent_process("--fake", str(scenario), "--interval", "500ms", *extra)


def one(series: Series, name: str, **labels: str) -> float | None:
    found = matching(series, name, **labels)
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} series"
    return next(iter(found.values()), None)


def uuid_of(series: Series, gpu: str) -> str:
    (labels,) = matching(series, "suanli_gpu_up", gpu=gpu)
    return dict(labels)["uuid"]


def energies(series: Series) -> dict[str, float]:
    return {
        dict(labels)["gpu"]: value
        for labels, value in matching(series, "suanli_gpu_energy_joules_total").items()
    }


def test_a_gpu_falling_off_the_bus_keeps_its_identity_and_its_xid_79(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    faults = (
        "faults:\n  - {kind: gpu_lost, gpu: 2, at: 3}\n  - {kind: xid, gpu: 2, at: 3, code: 79}\n"
    )
    agent = start(agent_process, tmp_path, faults)
    before = wait_for(agent, lambda s: one(s, "suanli_gpu_up", gpu="2") == 1.0, "GPU 2 up")
    uuid = uuid_of(before, "2")
    lost = wait_for(
        agent,
        lambda s: one(s, "suanli_gpu_xid_errors_total", gpu="2") is not None,
        "XID 79 on GPU 2",
    )
    # the event came with a handle that answers GPU_IS_LOST to everything: filed by handle
    assert one(lost, "suanli_gpu_xid_errors_total", gpu="2", uuid=uuid, xid="79") == 1.0
    assert one(lost, "suanli_gpu_xid_errors_total", xid="79", action="reboot_node") == 1.0
    lost = wait_for(agent, lambda s: one(s, "suanli_gpu_up", gpu="2") == 0.0, "GPU 2 down")
    assert one(lost, "suanli_gpu_up", gpu="2", uuid=uuid) == 0.0
    for check in ("lost", "xid_critical"):
        assert one(lost, "suanli_gpu_health_check_failed", gpu="2", check=check) == 1.0
    assert one(lost, "suanli_gpu_unresponsive_seconds", gpu="2", reason="lost") is not None
    assert one(lost, "suanli_gpus", state="lost") == 1.0
    assert one(lost, "suanli_gpus", state="present") == 7.0
    assert one(lost, "suanli_collector_success", collector="gpu/2") == 0.0
    time.sleep(1.2)
    later = scrape(agent)
    # the driver reported it twice (event and kernel log): one fault, counted once
    assert one(later, "suanli_gpu_xid_errors_total", gpu="2", xid="79") == 1.0
    assert one(later, "suanli_kmsg_up") == 1.0
    grew = {g: later_e > energies(lost)[g] for g, later_e in energies(later).items()}
    assert set(grew) == {"0", "1", "3", "4", "5", "6", "7"} and all(grew.values())


def test_a_gpu_lost_before_the_agent_started_is_visible(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    agent = start(agent_process, tmp_path, "faults:\n  - {kind: gpu_lost, gpu: 2}\n")
    series = wait_for(agent, lambda s: one(s, "suanli_gpu_up", gpu="0") == 1.0, "GPU 0 up")
    # nvmlDeviceGetHandleByIndex(2) answers GPU_IS_LOST: no UUID, but the slot is named
    assert one(series, "suanli_gpu_up", gpu="2", uuid="") == 0.0
    (info,) = matching(series, "suanli_gpu_info", gpu="2")
    assert dict(info)["pci_bus_id"] == GPU2_BUS
    assert one(series, "suanli_gpu_health_check_failed", gpu="2", check="lost") == 1.0
    assert one(series, "suanli_gpus", state="expected") == 8.0
    assert one(series, "suanli_gpus", state="lost") == 1.0


def test_a_gpu_that_failed_at_boot_is_expected_from_the_pci_bus(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    healthy = start(agent_process, tmp_path, "faults: []\n")
    reference = wait_for(healthy, lambda s: one(s, "suanli_gpu_up", gpu="7") == 1.0, "8 GPUs")
    healthy.close()
    by_uuid = {
        dict(k)["uuid"]: dict(k)["pci_bus_id"] for k in matching(reference, "suanli_gpu_info")
    }
    agent = start(agent_process, tmp_path, "faults:\n  - {kind: missing, gpu: 2}\n")
    series = wait_for(agent, lambda s: one(s, "suanli_gpu_up", gpu="6") == 1.0, "7 GPUs")
    # NVML lists 7: indexes compact (the old GPU 3 is now 2), UUIDs and bus ids are kept
    listed = {dict(k)["uuid"]: dict(k)["pci_bus_id"] for k in matching(series, "suanli_gpu_info")}
    del listed[""]
    assert len(listed) == 7 and all(by_uuid[u] == bus for u, bus in listed.items())
    assert one(series, "suanli_gpu_up", gpu="7") is None
    assert one(series, "suanli_gpu_up", gpu=GPU2_BUS, uuid="") == 0.0
    assert one(series, "suanli_gpu_health_check_failed", gpu=GPU2_BUS, check="missing") == 1.0
    assert one(series, "suanli_gpu_healthy", gpu=GPU2_BUS) == 0.0
    assert one(series, "suanli_gpu_unresponsive_seconds", gpu=GPU2_BUS, reason="missing")
    assert [one(series, "suanli_gpus", state=s) for s in ("expected", "present", "lost")] == [
        8.0,
        7.0,
        1.0,
    ]


def test_a_hung_gpu_is_marked_while_the_other_seven_stay_fresh(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    body = "latency: h200\nfaults:\n  - {kind: hang, gpu: 2, at: 2, until: 6}\n"
    agent = start(agent_process, tmp_path, body)
    wait_for(agent, lambda s: one(s, "suanli_gpu_up", gpu="2") == 1.0, "GPU 2 up")
    hung = wait_for(agent, lambda s: one(s, "suanli_gpu_up", gpu="2") == 0.0, "GPU 2 hung")
    first_age = one(hung, "suanli_gpu_unresponsive_seconds", gpu="2", reason="hung")
    assert first_age is not None
    assert one(hung, "suanli_collector_success", collector="gpu") == 1.0
    assert one(hung, "suanli_collector_success", collector="gpu/2") == 0.0
    time.sleep(1.5)  # three cycles while GPU 2 hangs
    still = scrape(agent)
    assert one(still, "suanli_gpu_up", gpu="2") == 0.0
    assert (one(still, "suanli_gpu_unresponsive_seconds", gpu="2") or 0) > first_age
    fresher = {g: e > energies(hung)[g] for g, e in energies(still).items()}
    assert set(fresher) == {"0", "1", "3", "4", "5", "6", "7"} and all(fresher.values())
    back = wait_for(agent, lambda s: one(s, "suanli_gpu_up", gpu="2") == 1.0, "recovery", 15.0)
    assert one(back, "suanli_gpu_unresponsive_seconds") is None
    assert one(back, "suanli_collector_success", collector="gpu/2") is None
    assert "Traceback" not in agent.stderr()


XID_LINE = (
    "4,{seq},{usec},-;NVRM: Xid (PCI:0000:18:00): {xid}, pid=1797828, name=pt_main_thread, {msg}\n"
)
SXID_LINE = (
    "4,{seq},{usec},-;nvidia-nvswitch1: SXid (PCI:0000:84:00.0): 20034, Fatal, Link 48 LTSSM "
    "Fault Up\n"
)
SXID_FOLLOW_UP = (
    "4,{seq},{usec},-;nvidia-nvswitch1: SXid (PCI:0000:84:00.0): 20034, Severity 1 Engine "
    "instance 48 Sub-engine instance 00\n"
)


def replay_config(tmp_path: Path, log: Path) -> Path:
    config = tmp_path / "agent.yaml"
    state = tmp_path / "state" / "kmsg-cursor.json"
    state.parent.mkdir(exist_ok=True)
    config.write_text(
        f"collectors:\n  kmsg:\n    path: {log}\n    state_file: {state}\n", encoding="utf-8"
    )
    return config


def test_kernel_log_xids_and_sxids_are_counted_once_across_a_restart(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    log = tmp_path / "kmsg.log"
    log.write_text(XID_LINE.format(seq=1, usec=1000, xid=109, msg="errorString CTX SWITCH TIMEOUT"))
    config = replay_config(tmp_path, log)
    agent = start(agent_process, tmp_path, "faults: []\n", "--config", str(config))
    series = wait_for(
        agent, lambda s: one(s, "suanli_gpu_xid_errors_total", gpu="0") == 1.0, "XID 109"
    )
    assert one(series, "suanli_gpu_xid_errors_total", gpu="0", xid="109", action="reset_gpu")
    with log.open("a") as handle:  # followed like tail -f: appended lines are read
        handle.write(SXID_LINE.format(seq=2, usec=2000) + SXID_FOLLOW_UP.format(seq=3, usec=2001))
        handle.write(XID_LINE.format(seq=4, usec=3000, xid=13, msg="Graphics SM Warp Exception"))
    series = wait_for(
        agent, lambda s: one(s, "suanli_gpu_xid_errors_total", xid="13") == 1.0, "XID 13"
    )
    sxid = {"switch": "nvidia-nvswitch1", "link": "48", "sxid": "20034"}
    assert one(series, "suanli_nvswitch_sxid_errors_total", **sxid) == 1.0, "one SXid, not two"
    assert one(series, "suanli_gpu_health_check_failed", gpu="0", check="xid_critical") == 1.0
    agent.stop()
    again = start(agent_process, tmp_path, "faults: []\n", "--config", str(config))
    series = wait_for(again, lambda s: one(s, "suanli_kmsg_up") == 1.0, "the log read again")
    time.sleep(0.6)
    series = scrape(again)
    assert matching(series, "suanli_gpu_xid_errors_total") == {}, "nothing counted twice"
    assert matching(series, "suanli_nvswitch_sxid_errors_total") == {}


def test_an_unreadable_kernel_log_is_a_metric_not_a_crash(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    config = replay_config(tmp_path, tmp_path / "no-such-kmsg")
    agent = start(agent_process, tmp_path, "faults: []\n", "--config", str(config))
    series = wait_for(agent, lambda s: one(s, "suanli_kmsg_up") == 0.0, "kmsg_up 0")
    assert one(series, "suanli_gpu_up", gpu="0") == 1.0
    assert agent.get("/healthz").status == 200
    assert "Traceback" not in agent.stderr()
