"""Reading the kernel log: record formats, following /dev/kmsg and files, and never counting an
event twice across agent restarts. Lines come from tests/fixtures/kmsg (real captures)."""

from __future__ import annotations

import logging
import os
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.hw.kernel_log import KernelLogWatcher
from agent.hw.kernel_xid import SxidLine, XidLine
from agent.hw.kmsg import KmsgCursor, KmsgError, KmsgFollower, KmsgRecord, parse_record

FIXTURES = Path(__file__).parent / "fixtures" / "kmsg"
XID_13 = "[Fri Aug 30 11:43:09 2024] NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Global Exception on (GPC 7, TPC 7, SM 0): Multiple Warp Errors"  # noqa: E501
XID_79 = "[6781741.548779] NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus."  # noqa: E501
SXID = "[6781753.400584] nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 48 LTSSM Fault Up"  # noqa: E501
SXID_DATA = "[6781753.406566] nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 20034, Data {0x10000000, 0x10000000, 0x00000000, 0x10000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000}"  # noqa: E501


def fixture_lines(name: str) -> list[str]:
    text = (FIXTURES / name).read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


# --- record formats ---------------------------------------------------------------------------


def test_dev_kmsg_records_from_a_gpu_node() -> None:
    records = [parse_record(line) for line in fixture_lines("dev-kmsg-records__gpud.txt")]
    assert [r.seq for r in records] == list(range(3964, 4011))
    assert {(r.priority, r.facility) for r in records} == {(6, 0)}  # kern.info
    assert records[40] == KmsgRecord(
        4004, 9184121699, 6, 0,
        "perf: interrupt took too long (2509 > 2500), lowering kernel.perf_event_max_sample_rate to 79500",  # noqa: E501
    )  # fmt: skip


def test_the_abi_documents_examples_continuation_lines_and_future_fields() -> None:
    record = parse_record(
        "7,160,424069,-;pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)\n"
        " SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n"
    )
    assert record == KmsgRecord(
        160, 424069, 7, 0, "pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)"
    )
    udevd = parse_record("30,340,5690716,-;udevd[80]: starting version 181")
    assert (udevd.facility, udevd.priority) == (3, 6)  # daemon.info
    assert (
        parse_record("6,339,5140900,c,future,fields;NET: Registered protocol family 10").seq == 339
    )


def test_escaped_bytes_are_unescaped_and_utf8_decoded() -> None:
    assert parse_record("4,7,1,-;caf\\xc3\\xa9 \\x5c tab\\x09end").text == "café \\ tab\tend"


@pytest.mark.parametrize(
    ("line", "ts_usec", "priority", "text_start"),
    [
        (XID_79, 6781741548779, None, "NVRM: Xid (PCI:0000:91:00): 79"),
        (
            "[ 1108.858286] nvidia-nvswitch0: SXid (PCI:0000:c3:00.0): 24007, Fatal, Link 28 sourcetrack timeout error (First)",  # noqa: E501
            1108858286, None, "nvidia-nvswitch0: SXid",
        ),
        ("[123] nvidia-nvswitch3: SXid (PCI:0000:c1:00.0): 28006, Non-fatal, Link 46 MC TS crumbstore MCTO (First)", 123000000, None, "nvidia-nvswitch3"),  # noqa: E501
        (XID_13, None, None, "NVRM: Xid (PCI:0000:cb:00): 13"),
        ("[Mon May  4 14:09:23 2026] NVRM: Xid (PCI:0000:3e:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)", None, None, "NVRM: Xid (PCI:0000:3e:00): 154"),  # noqa: E501
        ("kern  :warn  : 2025-01-21T04:41:44,287197+00:00 NVRM: Xid (PCI:0000:38:00): 43, pid=2924364, name=pt_main_thread, Ch 00000008", None, 4, "NVRM: Xid (PCI:0000:38:00): 43"),  # noqa: E501
        ("NVRM: Xid (PCI:0008:06:00): 145, RLW_REMAP Nonfatal XC0 i0 Link 0 (0x00000004 0x00000001 0x00000000 0x00000000 0x00000000 0x00000000)", None, None, "NVRM: Xid (PCI:0008:06:00): 145"),  # noqa: E501
    ],
)  # fmt: skip
def test_dmesg_line_forms(
    line: str, ts_usec: int | None, priority: int | None, text_start: str
) -> None:
    record = parse_record(line)
    assert (record.seq, record.ts_usec, record.priority) == (None, ts_usec, priority)
    assert record.text.startswith(text_start)


# --- following a regular file -----------------------------------------------------------------


def test_a_file_is_followed_like_tail_and_a_partial_line_waits_for_its_newline(
    tmp_path: Path,
) -> None:
    log = tmp_path / "kern.log"
    log.write_text(XID_13 + "\n" + SXID[:40])
    follower = KmsgFollower(str(log))
    first = follower.poll()
    assert [r.text[:30] for r in first] == ["NVRM: Xid (PCI:0000:cb:00): 13"]
    assert follower.poll() == []  # the SXid line has no newline yet
    with log.open("a") as handle:
        handle.write(SXID[40:] + "\n\n")
    second = follower.poll()
    assert [r.text for r in second] == [parse_record(SXID).text]
    assert (
        second[0].offset == len(XID_13) + 1 + len(SXID) + 1
        and second[0].file_id == first[0].file_id
    )
    assert follower.poll() == []
    follower.close()


def test_a_truncated_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text(XID_13 + "\n" + XID_79 + "\n")
    follower = KmsgFollower(str(log))
    assert len(follower.poll()) == 2
    log.write_text(SXID + "\n")  # truncates in place: same inode, shorter
    assert [r.text for r in follower.poll()] == [parse_record(SXID).text]


def test_a_replaced_file_is_finished_then_the_new_one_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text(XID_13 + "\n")
    follower = KmsgFollower(str(log))
    old_id = follower.poll()[0].file_id
    with log.open("a") as handle:
        handle.write(XID_79 + "\n")  # written to the old file just before rotation
    fresh = tmp_path / "kern.log.new"
    fresh.write_text(SXID + "\n")
    os.replace(fresh, log)
    texts = [r.text[:30] for r in follower.poll()]
    assert texts == ["NVRM: Xid (PCI:0000:91:00): 79"]  # the rest of the old file first
    records = follower.poll()
    assert [r.text for r in records] == [parse_record(SXID).text] and records[0].file_id != old_id


def test_a_missing_or_unfit_path_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KmsgError, match=r"^cannot open .*/absent: No such file or directory$"):
        KmsgFollower(str(tmp_path / "absent")).poll()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # a FIFO delivers bytes, not records: refused rather than misread
    with pytest.raises(KmsgError, match="not a character device or regular file"):
        KmsgFollower(str(fifo)).open()
    with pytest.raises(KmsgError, match="not a character device or regular file"):
        KmsgFollower(str(tmp_path)).open()


# --- following a character device (a pty stands in for /dev/kmsg: one read, one line) ---------


@pytest.fixture
def char_device() -> Iterator[tuple[int, str]]:
    """A pty pair: write records to the master, read them from the slave's path, one per read."""
    master, slave = os.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def write_records(master: int, *records: str) -> None:
    os.write(master, "".join(record + "\n" for record in records).encode())
    time.sleep(0.05)  # let the line discipline deliver them


def test_a_character_device_gives_one_record_per_read_and_never_blocks(
    char_device: tuple[int, str],
) -> None:
    master, path = char_device
    follower = KmsgFollower(path)
    assert follower.poll() == []  # EAGAIN: nothing yet, and no wait
    write_records(
        master, "6,3998,261229012,-;nvidia-nvswitch3: open (major=510)", "4,3999,1,-;" + XID_13[27:]
    )
    records = follower.poll()
    assert [(r.seq, r.priority) for r in records] == [(3998, 6), (3999, 4)]
    assert (
        records[1].text.startswith("NVRM: Xid (PCI:0000:cb:00): 13") and records[1].file_id is None
    )
    assert follower.poll() == [] and follower.lost == 0
    follower.close()


def test_overwritten_records_are_counted_as_lost(char_device: tuple[int, str]) -> None:
    master, path = char_device
    broken = [False, True]  # the second read finds the reader overrun, as EPIPE says

    def read(fd: int, size: int) -> bytes:
        if broken and broken.pop(0):
            raise BrokenPipeError(32, "Broken pipe")
        return os.read(fd, size)

    follower = KmsgFollower(path, read=read)
    write_records(master, "6,100,1,-;first", "6,104,2,-;after three were overwritten")
    assert [r.seq for r in follower.poll()] == [100, 104]
    assert follower.lost == 3


# --- the cursor: nothing counted twice across restarts ------------------------------------------


@pytest.fixture
def boot_id(tmp_path: Path) -> Path:
    path = tmp_path / "boot_id"
    path.write_text("9a6e3b52-4f0c-4c57-8d0e-0d2f3b1c7a11\n")
    return path


def device_records(*seqs: int) -> list[KmsgRecord]:
    return [parse_record(f"4,{seq},{seq * 1000},-;record {seq}") for seq in seqs]


def test_after_a_restart_in_the_same_boot_old_records_are_not_new(
    tmp_path: Path, boot_id: Path
) -> None:
    state = str(tmp_path / "cursor.json")
    cursor = KmsgCursor(state, str(boot_id))
    for record in device_records(10, 11, 12):
        assert cursor.is_new(record)
        cursor.advance(record)
    cursor.close()
    restarted = KmsgCursor(state, str(boot_id))
    assert [restarted.is_new(r) for r in device_records(11, 12, 13)] == [False, False, True]


def test_after_a_reboot_every_record_is_new(tmp_path: Path, boot_id: Path) -> None:
    state = str(tmp_path / "cursor.json")
    cursor = KmsgCursor(state, str(boot_id))
    cursor.advance(device_records(500)[0])
    cursor.close()
    boot_id.write_text("0b7c1d2e-another-boot\n")
    assert all(KmsgCursor(state, str(boot_id)).is_new(r) for r in device_records(1, 2, 500))


def test_without_a_boot_id_a_saved_seq_is_not_trusted(tmp_path: Path, boot_id: Path) -> None:
    state = str(tmp_path / "cursor.json")
    cursor = KmsgCursor(state, str(boot_id))
    cursor.advance(device_records(500)[0])
    cursor.close()
    assert KmsgCursor(state, str(tmp_path / "no-boot-id")).is_new(device_records(3)[0])


def test_an_unwritable_state_dir_keeps_the_cursor_in_memory_and_says_so_once(
    tmp_path: Path, boot_id: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("")
    clock = iter(range(0, 100, 2))
    cursor = KmsgCursor(
        str(tmp_path / "a-file" / "cursor.json"), str(boot_id), clock=lambda: next(clock)
    )
    with caplog.at_level(logging.WARNING):
        for record in device_records(1, 2):
            cursor.advance(record)
            cursor.save()
        cursor.close()
    assert [r.message for r in caplog.records] == [
        f"kernel-log cursor kept in memory only: cannot write {tmp_path}/a-file/cursor.json: "
        "Not a directory"
    ]
    assert [cursor.is_new(r) for r in device_records(2, 3)] == [False, True]


def test_the_state_is_written_at_most_once_a_second_and_on_close(
    tmp_path: Path, boot_id: Path
) -> None:
    now = [100.0]
    state = tmp_path / "cursor.json"
    cursor = KmsgCursor(str(state), str(boot_id), clock=lambda: now[0])
    cursor.advance(device_records(1)[0])
    cursor.save()
    cursor.advance(device_records(2)[0])
    now[0] += 0.5
    cursor.save()
    assert '"seq": 1' in state.read_text()
    cursor.close()
    assert '"seq": 2' in state.read_text()
    assert sorted(os.listdir(tmp_path)) == ["boot_id", "cursor.json"]  # no temp file left behind


# --- the watcher --------------------------------------------------------------------------------


class Events:
    def __init__(self) -> None:
        self.xids: list[tuple[XidLine, KmsgRecord]] = []
        self.sxids: list[tuple[SxidLine, KmsgRecord]] = []

    def watcher(self, path: Path, state: Path | None, boot_id: Path) -> KernelLogWatcher:
        cursor = KmsgCursor(None if state is None else str(state), str(boot_id))
        return KernelLogWatcher(
            lambda: KmsgFollower(str(path)), cursor, self.on_xid, self.on_sxid, poll_interval=0.01
        )

    def on_xid(self, xid: XidLine, record: KmsgRecord) -> None:
        self.xids.append((xid, record))

    def on_sxid(self, sxid: SxidLine, record: KmsgRecord) -> None:
        self.sxids.append((sxid, record))


def test_a_replayed_capture_counts_each_event_once_across_a_restart(
    tmp_path: Path, boot_id: Path
) -> None:
    log, state = tmp_path / "kern.log", tmp_path / "cursor.json"
    log.write_text(
        "\n".join(fixture_lines("xid-lines__gpud.txt") + fixture_lines("sxid-lines__gpud.txt"))
        + "\n"
    )
    events = Events()
    first = events.watcher(log, state, boot_id)
    first.drain_once()
    first.stop()
    assert (len(events.xids), len(events.sxids)) == (58, 7)
    restarted = events.watcher(log, state, boot_id)
    assert restarted.drain_once() == 0 and (len(events.xids), len(events.sxids)) == (58, 7)
    with log.open("a") as handle:
        handle.write(XID_79 + "\n" + SXID_DATA + "\n")
    assert restarted.drain_once() == 2
    assert events.xids[-1][0].xid == 79 and len(events.sxids) == 7  # a Data line is no new fault
    assert restarted.status() == (True, None, 0)


def test_a_log_that_cannot_be_read_is_reported_then_picked_up(
    tmp_path: Path, boot_id: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "kern.log"
    events = Events()
    watcher = events.watcher(log, None, boot_id)
    with caplog.at_level(logging.WARNING):
        assert watcher.drain_once() == 0 and watcher.drain_once() == 0
    up, error, lost = watcher.status()
    assert (up, lost) == (False, 0) and error == f"cannot open {log}: No such file or directory"
    assert len(caplog.records) == 1 and error in caplog.records[0].message
    log.write_text(XID_13 + "\n")
    assert watcher.drain_once() == 1 and watcher.status() == (True, None, 0)


def test_a_failing_callback_is_logged_once_and_reading_goes_on(
    tmp_path: Path, boot_id: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "kern.log"
    log.write_text(f"{XID_13}\n{XID_79}\n{SXID}\n")
    sxids: list[SxidLine] = []

    def broken(xid: XidLine, record: KmsgRecord) -> None:
        raise RuntimeError(f"bug handling XID {xid.xid}")

    cursor = KmsgCursor(None, str(boot_id))
    watcher = KernelLogWatcher(
        lambda: KmsgFollower(str(log)), cursor, broken, lambda s, r: sxids.append(s)
    )
    with caplog.at_level(logging.ERROR):
        assert watcher.drain_once() == 3
    assert [s.link for s in sxids] == [48]
    assert len(caplog.records) == 1 and "bug handling XID 13" in caplog.records[0].message


def test_the_thread_delivers_new_lines_and_stops_promptly(tmp_path: Path, boot_id: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text("")
    events = Events()
    watcher = events.watcher(log, tmp_path / "cursor.json", boot_id)
    before = set(threading.enumerate())
    watcher.start()
    (thread,) = set(threading.enumerate()) - before
    with log.open("a") as handle:
        handle.write(XID_79 + "\n")
    assert wait_for(lambda: len(events.xids) == 1)
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 1.0
    assert thread.name == "kernel-log" and not thread.is_alive()
    assert '"offset"' in (tmp_path / "cursor.json").read_text()  # saved on stop


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()
