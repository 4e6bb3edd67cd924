"""A scripted HTTP/2 server on a unix socket, for tests/test_grpc_unary.py: each connection is
handed to a script that reads the client's request and writes whatever frames the test wants,
well-formed or not. Frames are packed here by hand from RFC 9113 section 4.1, header blocks
by the `hpack` package, so nothing of the agent's own HTTP/2 code is used to test it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0, 1, 3, 4, 6, 7, 8, 9
)  # fmt: skip
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        ">I", stream
    ) + payload  # fmt: skip


def grpc_message(payload: bytes, flag: int = 0) -> bytes:
    return bytes([flag]) + len(payload).to_bytes(4, "big") + payload


class Connection:
    """One client connection as the script sees it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.request: dict[str, str] = {}
        self.frames: list[tuple[int, int, int, bytes]] = []  # everything the client sent

    def read_frame(self) -> tuple[int, int, int, bytes]:
        head = self._exactly(9)
        length = int.from_bytes(head[:3], "big")
        got = (head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF)
        framed = (*got, self._exactly(length))
        self.frames.append(framed)
        return framed

    def read_request(self) -> dict[str, str]:
        """The preface, then frames up to the request's end; its headers."""
        assert self._exactly(len(PREFACE)) == PREFACE
        while True:
            kind, flags, stream, payload = self.read_frame()
            if kind == HEADERS:
                decoded = self.decoder.decode(payload)
                self.request = {str(n): str(v) for n, v in decoded}
            if stream == 1 and flags & END_STREAM:
                return self.request

    def expect(self, kind: int, flags: int) -> bytes:
        """The payload of the next frame of this type and flags (others noted and passed)."""
        while True:
            got_kind, got_flags, _, payload = self.read_frame()
            if got_kind == kind and got_flags & flags == flags:
                return payload

    def headers(self, fields: list[tuple[str, str]], huffman: bool = True) -> bytes:
        return bytes(self.encoder.encode(fields, huffman=huffman))

    def send(self, *chunks: bytes) -> None:
        self.sock.sendall(b"".join(chunks))

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("client closed")
            data += chunk
        return data


class ScriptedServer:
    """Calls `script` with each accepted connection, on a thread of its own."""

    def __init__(self, path: Path, script: Callable[[Connection], None]) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(8)
        self.script = script
        self.connections: list[Connection] = []
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            connection = Connection(sock)
            self.connections.append(connection)
            threading.Thread(target=self._run, args=(connection,), daemon=True).start()

    def _run(self, connection: Connection) -> None:
        try:
            self.script(connection)
        except (ConnectionError, OSError):
            pass  # the client hung up: what the test checks happened before
        except BaseException as err:  # an assertion in the script: the test reports it
            self.errors.append(err)
        finally:
            connection.sock.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept()
        self.listener.close()
        self._thread.join(timeout=2.0)
