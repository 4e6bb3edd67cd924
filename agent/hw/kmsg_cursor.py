"""Which kernel-log records were already handled, across agent restarts.

A record read from the device is identified by `(boot_id, seq)`: new when its boot differs from
the saved one or its SEQ is higher (SEQ restarts at boot; without a readable boot id a saved SEQ
is not trusted, since a reboot would hide every new record).

A record read from a regular file is identified by `(file_id, offset)`: `file_id` is
`"<st_dev>:<st_ino>:<crc32 of the first line>"`, `offset` the byte offset of the end of its
line. It is new when the file differs (another inode, or the inode rewritten with another first
line) or it ends past the saved offset. SEQ fields in a replayed dump are not used (they belong
to another boot). A file truncated and rewritten with the same first line reads as the same
file: its records up to the saved offset count as seen.

A record with neither (a bare `parse_record` result) is always new. The state is a small JSON
file (`{"boot_id", "seq", "file", "offset"}`) replaced atomically (temp file + rename), written
at most once a second and on close; while it cannot be written (no such directory, read-only)
the cursor logs once and lives in memory only. Directories are not created.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # agent.hw.kmsg imports this module to export KmsgCursor
    from agent.hw.kmsg import KmsgRecord

log = logging.getLogger(__name__)


class KmsgCursor:
    """Which records were already handled, across agent restarts (see the module docstring)."""

    def __init__(
        self,
        state_path: str | None,
        boot_id_path: str = "/proc/sys/kernel/random/boot_id",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state_path = state_path
        self.boot_id = _read_text(boot_id_path)
        self._clock = clock
        self._seq: int | None = None
        self._file: str | None = None
        self._offset = 0
        self._dirty = False
        self._saved_at: float | None = None
        self._warned: set[str] = set()
        self._load()

    def is_new(self, record: KmsgRecord) -> bool:
        if record.file_id is not None and record.offset is not None:
            return record.file_id != self._file or record.offset > self._offset
        if record.seq is not None:
            return self._seq is None or record.seq > self._seq
        return True

    def advance(self, record: KmsgRecord) -> None:
        if record.file_id is not None and record.offset is not None:
            self._file, self._offset = record.file_id, record.offset
        elif record.seq is not None:
            self._seq = record.seq
        else:
            return
        self._dirty = True

    def save(self, force: bool = False) -> None:
        """Write the state if it changed, at most once a second unless `force`."""
        now = self._clock()
        recent = self._saved_at is not None and now - self._saved_at < 1.0
        if self.state_path is None or not self._dirty or (recent and not force):
            return
        self._saved_at = now
        state = {"boot_id": self.boot_id, "seq": self._seq}
        state.update({"file": self._file, "offset": self._offset})
        try:
            _write_atomically(Path(self.state_path), json.dumps(state))
        except OSError as err:
            return self._warn_once(
                "save",
                f"kernel-log cursor kept in memory only: cannot write {self.state_path}: "
                f"{err.strerror or err}",
            )
        self._dirty = False

    def close(self) -> None:
        self.save(force=True)

    def _load(self) -> None:
        if self.state_path is None:
            return
        try:
            state: Any = json.loads(Path(self.state_path).read_text())
        except (FileNotFoundError, NotADirectoryError):
            return  # first start; an unwritable place is reported when saving
        except (OSError, ValueError) as err:
            self._warn_once("load", f"ignoring the kernel-log cursor {self.state_path}: {err}")
            return
        if not isinstance(state, dict):
            return self._warn_once("load", f"ignoring the kernel-log cursor {self.state_path}")
        seq, file, offset = state.get("seq"), state.get("file"), state.get("offset")
        if self.boot_id is not None and state.get("boot_id") == self.boot_id:
            self._seq = seq if isinstance(seq, int) else None
        if isinstance(file, str) and isinstance(offset, int):
            self._file, self._offset = file, offset

    def _warn_once(self, topic: str, message: str) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            log.warning("%s", message)


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def _write_atomically(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
