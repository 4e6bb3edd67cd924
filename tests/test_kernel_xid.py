"""XID and SXid lines as real nodes print them, the XID catalogue's advice, and the SXid counter.

The lines come from tests/fixtures/kmsg (verbatim copies of the shared reference captures); each
expectation below was read off the line it names.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agent.collectors.nvswitch import KMSG_UP, SXID_ERRORS, SxidCounter, kmsg_up_sample
from agent.hw.kernel_xid import SxidLine, XidLine, parse_sxid, parse_xid
from agent.hw.kmsg import parse_record
from agent.hw.pci import pci_address
from agent.hw.xid_catalogue import ACTIONS, advice, needs_operator
from agent.metrics import Sample

FIXTURES = Path(__file__).parent / "fixtures" / "kmsg"


def lines(name: str) -> list[str]:
    text = (FIXTURES / name).read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def xids(name: str) -> list[XidLine]:
    parsed = [parse_xid(parse_record(line).text) for line in lines(name)]
    return [xid for xid in parsed if xid is not None]


def sxids(name: str) -> list[SxidLine | None]:
    """The parse of every SXid line of a file (None for the ones that are no event)."""
    return [parse_sxid(parse_record(line).text) for line in lines(name) if "SXid" in line]


def by_gpu(events: list[XidLine]) -> dict[tuple[int, int, int], Counter[int]]:
    counts: dict[tuple[int, int, int], Counter[int]] = {}
    for event in events:
        counts.setdefault(event.pci, Counter())[event.xid] += 1
    return counts


def test_every_xid_line_of_the_gpud_captures_counts_once_for_its_gpu() -> None:
    assert sum("NVRM: Xid (" in line for line in lines("xid-lines__gpud.txt")) == 58
    assert by_gpu(xids("xid-lines__gpud.txt")) == {
        (0, 0xCB, 0): Counter({13: 3, 109: 2, 31: 1}),  # [A] dmesg --ctime, H100
        (0, 0x9B, 0): Counter({119: 5}),  # [B] GSP RPC timeouts, the RPC dump lines are no XID
        (0, 0x38, 0): Counter({13: 16, 43: 1}),  # [C] dmesg --decode --time-format iso
        (0, 0x91, 0): Counter(
            {79: 1}
        ),  # [D] fallen off the bus; the "GPU 0000:91:00.0" line is none
        (0x9, 1, 0): Counter({149: 3, 154: 1}),  # [E] GB200 domains
        (0x8, 1, 0): Counter({149: 6, 145: 3, 154: 1}),  # [E] + [F]
        (0x18, 1, 0): Counter({149: 6, 145: 2, 154: 1}),
        (0x19, 1, 0): Counter({149: 2, 145: 2, 154: 1}),
        (0x8, 6, 0): Counter({145: 1}),  # [G]
    }


def test_every_xid_line_of_the_github_issue_pastes_counts_once() -> None:
    events = xids("xid-lines__github-issues.txt")
    assert by_gpu(events) == {
        (0, 0xDC, 0): Counter({45: 2}),
        (0, 0xED, 0): Counter({45: 2}),
        (0, 0xBA, 0): Counter({45: 2}),
        (0, 0x97, 0): Counter({45: 2}),
        (0, 0x3E, 0): Counter({62: 1, 154: 1}),
        (0, 0x01, 0): Counter({32: 2, 31: 1, 144: 1}),
        (0, 0x00, 0): Counter({149: 2}),
    }
    assert Counter(event.caused_by for event in events if event.xid == 45) == {
        145: 5,
        149: 2,
        None: 1,
    }


def test_an_old_driver_line_with_unknown_owner_has_no_pid_or_process() -> None:
    line = (
        "[6781741.548779] NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, "
        "GPU has fallen off the bus."
    )
    assert parse_xid(parse_record(line).text) == XidLine(
        pci=(0, 0x91, 0), xid=79, pid=None, process=None, message="GPU has fallen off the bus."
    )


def test_a_line_with_its_process_names_the_pid_and_process() -> None:
    line = (
        "[Sun Feb 23 16:27:12 2025] NVRM: Xid (PCI:0000:9b:00): 119, pid=1263500, "
        "name=cache_mgr_main, Timeout after 6s of waiting for RPC response from GPU4 GSP! "
        "Expected function 76 (GSP_RM_CONTROL) (0x20801813 0x4c)."
    )
    event = parse_xid(parse_record(line).text)
    assert event is not None
    assert (event.pci, event.xid, event.pid, event.process) == (
        (0, 0x9B, 0),
        119,
        1263500,
        "cache_mgr_main",
    )
    assert event.message.startswith("Timeout after 6s") and event.message.endswith(
        "(0x20801813 0x4c)."
    )


def test_a_process_name_with_colons_and_a_root_cause_suffix() -> None:
    ray = "NVRM: Xid (PCI:0018:01:00): 145, pid=876767, name=ray::WorkerDict, RLW_RXPIPE Nonfatal XC0 i0 Link 13 (0x0409a0c2 0x00000008 0x00000001 0x00000000 0x00100000 0x00000004)"  # noqa: E501
    event = parse_xid(ray)
    assert event is not None and (event.pci, event.pid, event.process) == (
        (0x18, 1, 0),
        876767,
        "ray::WorkerDict",
    )
    assert event.message.startswith("RLW_RXPIPE Nonfatal XC0 i0 Link 13")
    line = "kernel: NVRM: Xid (PCI:0000:dc:00): 45, pid=1818990, name=python3, Ch 00000001 caused by previous Xid 149"  # noqa: E501
    caused = parse_xid(line)
    assert caused == XidLine((0, 0xDC, 0), 45, 1818990, "python3", "Ch 00000001", caused_by=149)


def test_the_2015_format_without_pid_fields() -> None:
    event = parse_xid(
        "NVRM: Xid (PCI:0000:01:00): 31, Ch 00000003, engmask 00000101, intr 10000000"
    )
    assert event == XidLine(
        (0, 1, 0), 31, None, None, "Ch 00000003, engmask 00000101, intr 10000000"
    )


# No capture in the references has a MIG attribution; these lines follow the driver's format
# strings in reference/kmsg/xid-line-format.txt ("PCI:%04x:%02x:%02x GPU-I:%02u GPU-CI:%02u").
@pytest.mark.parametrize(
    ("line", "gpu_instance", "compute_instance"),
    [
        ("NVRM: Xid (PCI:0000:9b:00 GPU-I:03): 43, pid=4242, name=python3, Ch 00000008", 3, None),
        ("NVRM: Xid (PCI:0000:9b:00 GPU-I:01 GPU-CI:00): 94, Contained: SM (0x1). RST: No", 1, 0),
    ],
)
def test_mig_lines_name_their_gpu_and_compute_instance(
    line: str, gpu_instance: int, compute_instance: int | None
) -> None:
    event = parse_xid(line)
    assert event is not None and event.pci == (0, 0x9B, 0)
    assert (event.gpu_instance, event.compute_instance) == (gpu_instance, compute_instance)


@pytest.mark.parametrize(
    "line",
    [
        "[Sun Feb 23 16:24:18 2025] NVRM: GPU at PCI:0000:9b:00: GPU-509665ad-b600-ac93-3616-d754b23d636d",  # noqa: E501
        "[6781741.548783] NVRM: GPU 0000:91:00.0: GPU has fallen off the bus.",
        "[Sun Feb 23 16:24:36 2025] NVRM: Rate limiting GSP RPC error prints for GPU at PCI:0000:9b:00 (printing 1 of every 30).  The GPU likely needs to be reset.",  # noqa: E501
        "NVRM: fallen off the bus and is not responding to commands.",
        "6,3964,206764307,-;nvidia-nvswitch2: open (major=510)",
    ],
)
def test_driver_lines_that_are_no_xid_event(line: str) -> None:
    text = parse_record(line).text
    assert parse_xid(text) is None and parse_sxid(text) is None


def test_an_sxid_fault_printed_on_several_lines_counts_once() -> None:
    parsed = sxids("sxid-lines__gpud.txt")
    events = [event for event in parsed if event is not None]
    assert (
        len(parsed) == 12 and len(events) == 7
    )  # 5 follow-ups: 3x "Severity 1 Engine", 2x "Data {"
    assert events[:4] == [
        SxidLine("nvidia-nvswitch1", "0000:06:00.0", 20034, True, 48),
        SxidLine("nvidia-nvswitch0", "0000:05:00.0", 20034, True, 63),
        SxidLine("nvidia-nvswitch2", "0000:07:00.0", 20034, True, 37),
        SxidLine("nvidia-nvswitch0", "0000:05:00.0", 20034, True, 62),
    ]
    assert events[4:] == [
        SxidLine("nvidia-nvswitch3", "0000:05:00.0", 12028, False, 32),
        SxidLine("nvidia-nvswitch0", "0000:00:00.0", 20034, True, 30),
        SxidLine("nvidia-nvswitch3", "0000:05:00.0", 12028, False, 32),
    ]


def test_nvsentinel_sxid_lines() -> None:
    assert sxids("sxid-lines__nvsentinel.txt") == [
        SxidLine("nvidia-nvswitch3", "0000:c1:00.0", 28006, False, 46),
        SxidLine("nvidia-nvswitch0", "0000:06:00.0", 20009, False, 4),
        SxidLine("nvidia-nvswitch0", "0000:c3:00.0", 24007, True, 28),
        None,  # SOE lines carry no Fatal/Non-fatal: not counted (see the module docstring)
        None,
        None,
        None,
        SxidLine("nvidia-nvswitch1", "0000:06:00.0", 20009, False, None),  # cut after "Li"
        None,  # "Severity 1 Engine instance 00 ...": a follow-up
        SxidLine("nvidia-nvswitch1", "0000:06:00.0", 20009, False, None),  # cut after "Link"
    ]


@pytest.mark.parametrize(
    "bus_id",
    ["00000000:9B:00.0", "0000:9b:00", "0000:9b:00.0", "PCI:0000:9b:00", " 0000:9B:00.0\n"],
)
def test_nvml_and_kernel_pci_addresses_meet_on_one_key(bus_id: str) -> None:
    assert pci_address(bus_id) == (0, 0x9B, 0)


def test_pci_keys_keep_gb200_domains_apart_and_refuse_garbage() -> None:
    assert pci_address("00000009:01:00.0") == (9, 1, 0) != pci_address("0000:01:00.0")
    assert pci_address("GPU-509665ad") is None


@pytest.mark.parametrize(
    ("xid", "mnemonic", "action", "severity"),
    [
        (
            13,
            "ROBUST_CHANNEL_GR_EXCEPTION / ROBUST_CHANNEL_GR_ERROR_SW_NOTIFY",
            "restart_app",
            "nonfatal",
        ),
        (31, "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT", "restart_app", "nonfatal"),
        (48, "ROBUST_CHANNEL_GPU_ECC_DBE", "investigate", "fatal"),  # WORKFLOW_XID_48
        (79, "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS", "reboot_node", "fatal"),  # RESTART_BM
        (94, "ROBUST_CHANNEL_CONTAINED_ERROR", "restart_app", "nonfatal"),
        (95, "ROBUST_CHANNEL_UNCONTAINED_ERROR", "reset_gpu", "fatal"),
        (119, "GSP_RPC_TIMEOUT", "reset_gpu", "fatal"),
        (43, "ROBUST_CHANNEL_RESETCHANNEL_VERIF_ERROR", "none", "nonfatal"),  # IGNORE
        (54, "SILENT_RUNNING_PWR_REDUCED_CLOCKING", "check_hardware", "fatal"),  # CHECK_MECHANICALS
        (154, "GPU_RECOVERY_ACTION_CHANGED", "none", "nonfatal"),  # XID_154, informational
        (1, "ROBUST_CHANNEL_FIFO_ERROR_FIFO_METHOD", "contact_support", "fatal"),
        (168, "REDUCED_GPU_MEMORY_CAPACITY", "unknown", None),  # listed without an action yet
    ],
)
def test_catalogue_advice(xid: int, mnemonic: str, action: str, severity: str | None) -> None:
    found = advice(xid)
    assert (found.xid, found.mnemonic, found.action, found.severity) == (
        xid,
        mnemonic,
        action,
        severity,
    )


def test_an_xid_the_catalogue_does_not_list_is_unknown_and_needs_an_operator() -> None:
    assert advice(9999).action == "unknown" and advice(9999).mnemonic == ""
    assert (
        needs_operator("unknown") and needs_operator("reset_gpu") and needs_operator("investigate")
    )
    assert not needs_operator("restart_app") and not needs_operator("none")


def test_every_catalogue_entry_maps_into_the_vocabulary() -> None:
    actions = {advice(xid).action for xid in range(1, 173)}
    assert actions == set(ACTIONS)
    assert (
        ACTIONS.index("reset_gpu") < ACTIONS.index("reboot_node") < ACTIONS.index("contact_support")
    )


def test_sxid_counter_counts_per_switch_link_and_code() -> None:
    counter = SxidCounter()
    for event in sxids("sxid-lines__gpud.txt") + sxids("sxid-lines__nvsentinel.txt"):
        if event is not None:
            counter.count(event)
    samples = {sample.labels: sample.value for sample in counter.samples()}
    assert samples[("nvidia-nvswitch3", "32", "12028")] == 2
    assert samples[("nvidia-nvswitch0", "63", "20034")] == 1
    assert samples[("nvidia-nvswitch1", "", "20009")] == 2  # the two cut lines name no link
    assert sum(samples.values()) == 7 + 5
    assert all(sample.spec is SXID_ERRORS for sample in counter.samples())


def test_kmsg_up_is_a_plain_gauge() -> None:
    assert kmsg_up_sample(True) == Sample(KMSG_UP, (), 1.0)
    assert kmsg_up_sample(False).value == 0.0 and KMSG_UP.labels == ()
