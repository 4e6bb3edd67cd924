"""One client connection of the HTTP loop: its socket, bounded buffers, state and deadline.

Everything here is non-blocking and runs in the loop's thread. Memory per connection is bounded:
at most `MAX_HEAD_BYTES` plus one read of unparsed input, and the response as a view of bytes
the renderer already holds (the body is never copied).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence
from typing import Any

from agent.http_request import MAX_HEAD_BYTES

READ_CHUNK = 16 * 1024

# What a connection is doing; it decides what it waits for and which deadline applies.
HANDSHAKE, READING, CHECKING, WRITING = "handshake", "reading", "checking", "writing"
DRAINING, CLOSED = "draining", "closed"  # DRAINING: answered and closing, reading what is left


class Connection:
    def __init__(self, sock: Any, peer: str, now: float, again: tuple[type[Exception], ...]):
        self.sock = sock
        self.peer = peer
        self.state = READING
        self.inbuf = bytearray()
        self.out: list[memoryview] = []
        self.close_after = False
        self.deadline = now
        self.why = "idle"  # the eviction reason when the deadline passes
        self.events = 0  # what the selector watches for
        self.served = 0  # requests read in full
        self._again = again  # the exceptions that mean "try again when ready"
        self._plain = type(sock) is socket.socket  # not TLS: sendmsg gathers head and body

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def expect(self, deadline: float, why: str) -> None:
        self.deadline, self.why = deadline, why

    def receive(self) -> bool:
        """Read what is there into `inbuf`; False when the client closed or the read failed."""
        try:
            while len(self.inbuf) <= MAX_HEAD_BYTES:
                chunk = self.sock.recv(READ_CHUNK)
                if not chunk:
                    return False
                self.inbuf += chunk
                if not getattr(self.sock, "pending", lambda: 0)():
                    break  # a TLS socket may hold decrypted bytes the selector cannot see
        except self._again:
            return True
        except OSError:
            return False
        return True

    def queue(self, pieces: Sequence[bytes]) -> None:
        self.out = [memoryview(piece) for piece in pieces if piece]
        self.state = WRITING

    def send(self) -> bool | None:
        """Send what the socket takes: True when all is sent, None when it waits, False on error."""
        try:
            while self.out:
                # plain: head and body gathered into one segment, no copy
                plain = self._plain
                self._advance(self.sock.sendmsg(self.out) if plain else self.sock.send(self.out[0]))
        except self._again:
            return None
        except OSError:
            return False
        return True

    def _advance(self, sent: int) -> None:
        while sent and self.out:
            first = self.out[0]
            if sent >= len(first):
                sent -= len(first)
                self.out.pop(0)
            else:
                self.out[0] = first[sent:]
                sent = 0

    def close(self) -> None:
        self.state = CLOSED
        self.out = []
        self.inbuf = bytearray()
        with contextlib.suppress(OSError):
            self.sock.close()
