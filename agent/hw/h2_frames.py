"""HTTP/2 frames (RFC 9113 section 4 and 6), as a client with prior knowledge reads and writes
them on a socket whose every wait is bounded by one deadline.

`Wire` reads whole frames from the socket through a buffer, each `recv` given only the time
left; `frame()` and friends make the few frames the client sends.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # section 3.4

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9

END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# section 6.5.2
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH = 0x1, 0x2
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6
DEFAULT_MAX_FRAME_SIZE = 16384  # what this side accepts: it never advertises more
REFUSED_STREAM, INADEQUATE_SECURITY = 0x7, 0xC  # error codes (section 7) with a meaning here

_HEADER = struct.Struct(">HBBBI")  # 24-bit length as 16 + 8 bits, type, flags, stream id
_CHUNK = 256 * 1024


class ProtocolError(Exception):
    """The peer broke HTTP/2 (or is not speaking it)."""


class Closed(Exception):
    """The peer closed the connection."""


class Deadline:
    """One moment every wait of a call ends by."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; `socket.timeout` when none are."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left


@dataclass(frozen=True)
class Frame:
    type: int
    flags: int
    stream: int
    payload: bytes


class Wire:
    """Frames read from `sock`, no frame longer than this side's SETTINGS_MAX_FRAME_SIZE."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self._buffer = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.settimeout(self.deadline.left())
        self.sock.sendall(data)

    def read_frame(self) -> Frame:
        length_high, length_low, kind, flags, stream = _HEADER.unpack(self._take(9))
        length = (length_high << 8) | length_low
        if length > DEFAULT_MAX_FRAME_SIZE:
            raise ProtocolError(f"a frame of {length} bytes (FRAME_SIZE_ERROR)")
        return Frame(kind, flags, stream & 0x7FFFFFFF, self._take(length))

    def _take(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self.sock.settimeout(self.deadline.left())
            chunk = self.sock.recv(_CHUNK)
            if not chunk:
                raise Closed("the peer closed the connection")
            self._buffer += chunk
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        return taken


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    length = len(payload)
    return _HEADER.pack(length >> 8, length & 0xFF, kind, flags, stream) + payload


def settings(values: dict[int, int]) -> bytes:
    payload = b"".join(struct.pack(">HI", key, value) for key, value in values.items())
    return frame(SETTINGS, 0, 0, payload)


def window_update(stream: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def parse_settings(payload: bytes) -> dict[int, int]:
    if len(payload) % 6:
        raise ProtocolError("SETTINGS of a length not a multiple of 6 (FRAME_SIZE_ERROR)")
    return dict(struct.iter_unpack(">HI", payload))


def unpadded(got: Frame) -> bytes:
    """A DATA or HEADERS payload without its padding (and a HEADERS' priority fields)."""
    payload = got.payload
    pad = 0
    if got.flags & PADDED:
        if not payload:
            raise ProtocolError("PADDED frame without its pad length")
        pad, payload = payload[0], payload[1:]
    if got.type == HEADERS and got.flags & PRIORITY_FLAG:
        if len(payload) < 5:
            raise ProtocolError("HEADERS too short for its priority (FRAME_SIZE_ERROR)")
        payload = payload[5:]  # stream dependency (4) and weight (1)
    if pad > len(payload):
        raise ProtocolError("padding longer than the frame (PROTOCOL_ERROR)")
    return payload[: len(payload) - pad]


def error_code(payload: bytes, at: int = 0) -> int:
    """The 32-bit error code of RST_STREAM (at 0) or GOAWAY (at 4)."""
    if len(payload) < at + 4:
        raise ProtocolError("frame too short for its error code (FRAME_SIZE_ERROR)")
    return int(struct.unpack_from(">I", payload, at)[0])


def goaway_last_stream(payload: bytes) -> int:
    return int(struct.unpack_from(">I", payload)[0]) & 0x7FFFFFFF if len(payload) >= 4 else 0
