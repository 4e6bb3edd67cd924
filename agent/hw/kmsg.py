"""Reading the kernel log: /dev/kmsg records, or a regular file of dmesg lines, without blocking.

`KmsgFollower` reads `/dev/kmsg` (one `read()` is one record; EAGAIN: nothing more; EPIPE:
records were overwritten) or follows a regular file like `tail -F` (replayed captures).

`KmsgCursor` (in `agent.hw.kmsg_cursor`, exported here too) remembers which records were
already handled, so that an agent restart counts nothing twice.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from agent.hw.kmsg_cursor import KmsgCursor

__all__ = ["KmsgCursor", "KmsgError", "KmsgFollower", "KmsgRecord", "parse_record"]

log = logging.getLogger(__name__)

KMSG_READ_SIZE = 8192  # larger than the kernel's record limit (PRINTKRN_RECORD_MAX 1024 + dict)
_FILE_CHUNK = 65536
_MAX_LINE = 1 << 20  # a "line" longer than this is cut, so a file without newlines stays bounded

_KMSG = re.compile(r"(\d+),(\d+),(\d+),[^;]*;(.*)", re.S)
_ESCAPES = re.compile(r"(?:\\x[0-9a-fA-F]{2})+")
_MONOTONIC = re.compile(r"\[\s*(\d+)(?:\.(\d+))?\]\s?(.*)", re.S)
_CTIME = re.compile(r"\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\]\s?(.*)", re.S)
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[,.]\d+(?:[+-]\d\d:?\d\d|Z)? (.*)", re.S)
_DECODED = re.compile(r"([a-z0-9]+)\s*:([a-z]+)\s*: (.*)", re.S)  # dmesg --decode
_CONTINUATION = re.compile(rb" [A-Z][A-Z0-9_]*=")
_FACILITIES = dict(kern=0, user=1, mail=2, daemon=3, auth=4, syslog=5, lpr=6, cron=9)
_FACILITIES.update({f"local{n}": 16 + n for n in range(8)})
_LEVELS = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")


class KmsgError(OSError):
    """The kernel log cannot be opened or read; the message is one line, fit for a log."""


@dataclass(frozen=True)
class KmsgRecord:
    """One kernel-log record. `seq` is set for /dev/kmsg records, `ts_usec` where the line gives
    time since boot; `file_id` and `offset` (end of the line) for records read from a file."""

    seq: int | None
    ts_usec: int | None
    priority: int | None
    facility: int | None
    text: str
    file_id: str | None = None
    offset: int | None = None


def parse_record(raw: str) -> KmsgRecord:
    """A /dev/kmsg record (`PRI,SEQ,TS,FLAGS[,...];TEXT` plus ` KEY=VALUE` lines, ignored) or a
    dmesg line (`[  12.345678] text`, `[Fri Aug 30 11:43:09 2024] text`, `--decode` prefixes,
    or bare text)."""
    line = raw.split("\n", 1)[0].rstrip("\r")
    match = _KMSG.fullmatch(line)
    if match is not None:
        pri = int(match.group(1))
        text = _ESCAPES.sub(_unescape, match.group(4))
        return KmsgRecord(int(match.group(2)), int(match.group(3)), pri & 7, pri >> 3, text)
    priority = facility = None
    decoded = _DECODED.fullmatch(line)
    if decoded and decoded.group(1) in _FACILITIES and decoded.group(2) in _LEVELS:
        facility, priority = _FACILITIES[decoded.group(1)], _LEVELS.index(decoded.group(2))
        line = decoded.group(3)
    ts_usec = None
    if (mono := _MONOTONIC.fullmatch(line)) is not None:
        fraction = (mono.group(2) or "").ljust(6, "0")[:6]
        ts_usec, line = int(mono.group(1)) * 1_000_000 + int(fraction), mono.group(3)
    elif (wall := _CTIME.fullmatch(line) or _ISO.fullmatch(line)) is not None:
        line = wall.group(1)
    return KmsgRecord(None, ts_usec, priority, facility, line)


def _unescape(match: re.Match[str]) -> str:
    return bytes.fromhex(match.group(0).replace("\\x", "")).decode("utf-8", "replace")


class KmsgFollower:
    """Never-blocking reader of a kernel log: `/dev/kmsg` or a regular file followed from its
    start. `lost` counts records the kernel overwrote before they were read."""

    def __init__(self, path: str = "/dev/kmsg", read: Callable[[int, int], bytes] = os.read):
        self.path = path
        self.lost = 0
        self._read = read  # os.read; tests script EPIPE through it
        self._fd: int | None = None
        self._device = False
        self._ident = (0, 0)  # st_dev, st_ino of the open file
        self._offset = 0  # bytes of complete lines consumed
        self._pending = b""
        self._file_id: str | None = None
        self._last_seq: int | None = None
        self._overwritten = False

    def open(self) -> None:
        """Open the log if not open yet; KmsgError says why it cannot be."""
        if self._fd is not None:
            return
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags)
        except OSError as err:
            raise KmsgError(f"cannot open {self.path}: {err.strerror or err}") from None
        mode = os.fstat(fd).st_mode  # of what was opened, not of what the path names now
        if not (stat.S_ISCHR(mode) or stat.S_ISREG(mode)):
            os.close(fd)
            raise KmsgError(f"cannot read {self.path}: not a character device or regular file")
        self._fd, self._device = fd, stat.S_ISCHR(mode)
        self._start_file()

    def poll(self, max_records: int = 10000) -> list[KmsgRecord]:
        """The records available now (at most `max_records`); [] when there are none."""
        self.open()
        try:
            if self._device:
                return self._poll_device(max_records)
            return self._poll_file(max_records)
        except KmsgError:
            self.close()
            raise
        except OSError as err:
            self.close()
            raise KmsgError(f"cannot read {self.path}: {err.strerror or err}") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _poll_device(self, limit: int) -> list[KmsgRecord]:
        records: list[KmsgRecord] = []
        assert self._fd is not None
        for _ in range(limit):
            try:
                data = self._read(self._fd, KMSG_READ_SIZE)
            except BlockingIOError:
                break
            except BrokenPipeError:  # overwritten; the next read gives the oldest one left
                self._overwritten = True
                continue
            if not data:
                break
            records.append(self._count_gap(parse_record(data.decode("utf-8", "replace"))))
        return records

    def _count_gap(self, record: KmsgRecord) -> KmsgRecord:
        if record.seq is not None and self._last_seq is not None and record.seq > self._last_seq:
            self.lost += record.seq - self._last_seq - 1
        elif self._overwritten:
            self.lost += 1  # at least one; without SEQ the number is unknown
        self._overwritten = False
        self._last_seq = record.seq if record.seq is not None else self._last_seq
        return record

    def _start_file(self) -> None:
        assert self._fd is not None
        info = os.fstat(self._fd)
        self._ident = (info.st_dev, info.st_ino)
        self._offset, self._pending, self._file_id = 0, b"", None

    def _poll_file(self, limit: int) -> list[KmsgRecord]:
        assert self._fd is not None
        if os.fstat(self._fd).st_size < self._offset + len(self._pending):
            log.info("%s was truncated; reading it again from the start", self.path)
            self._start_file()
        records = self._take_lines(limit)
        while len(records) < limit:
            chunk = os.pread(self._fd, _FILE_CHUNK, self._offset + len(self._pending))
            if chunk:
                self._pending += chunk
                records += self._take_lines(limit - len(records))
            elif records or not self._replaced():
                break  # a replaced file is switched to once what was read is handed over
            else:
                self.close()
                self.open()
        return records

    def _replaced(self) -> bool:
        try:
            info = os.stat(self.path)
        except OSError:
            return False  # gone for now (rotation); keep the open file and look again later
        return (info.st_dev, info.st_ino) != self._ident

    def _take_lines(self, limit: int) -> list[KmsgRecord]:
        records: list[KmsgRecord] = []
        start = 0
        while len(records) < limit:
            end = self._pending.find(b"\n", start)
            if end >= 0:
                line, start = self._pending[start:end], end + 1
            elif len(self._pending) - start >= _MAX_LINE:
                line, start = self._pending[start : start + _MAX_LINE], start + _MAX_LINE
            else:
                break
            if self._file_id is None:
                self._file_id = "{}:{}:{:08x}".format(*self._ident, zlib.crc32(line))
            if line.strip() and not _CONTINUATION.match(line):
                record = parse_record(line.decode("utf-8", "replace"))
                offset = self._offset + start
                records.append(replace(record, file_id=self._file_id, offset=offset))
        self._offset += start
        self._pending = self._pending[start:]
        return records
