"""What the HTTP loop does with one connection: TLS handshake steps, reading and parsing a
request, admitting it (basic auth), answering, writing the answer, and lingering before close.

A base class of `agent.http_loop.LoopServer`, which owns the sockets, the selector and the cap.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.http_auth import CHECKING, DENY, PASS, AuthGate
from agent.http_conn import CHECKING as CONN_CHECKING
from agent.http_conn import DRAINING, HANDSHAKE, READING, WRITING, Connection
from agent.http_request import HttpError, Request, parse_head, response_head
from agent.http_stats import HttpStats

log = logging.getLogger(__name__)

READ, WRITE = 1, 2  # selectors.EVENT_READ, EVENT_WRITE
RESERVED_FILES = 256  # NVML's device files, /proc and /sys reads, the journal, Python's own
MIN_CONNECTIONS = 8
DRAIN_S = 1.0  # after an answer and before closing: read what the client still sends, so the
# kernel does not reset the connection (and discard the answer) over unread bytes


@dataclass(frozen=True)
class Limits:
    max_connections: int = 512  # and at most the file limit less RESERVED_FILES: see fitted()
    first_request_s: float = 10.0  # a new connection's first request, TLS handshake included
    keepalive_s: float = 60.0  # between requests on a kept-alive connection
    request_s: float = 10.0  # one request, from its first byte to its blank line
    write_s: float = 10.0  # one response, until the client has read all of it

    def fitted(self) -> Limits:
        """These limits with the connection cap lowered, when the process's file limit
        (RLIMIT_NOFILE) would otherwise leave the collectors too few descriptors."""
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft == resource.RLIM_INFINITY:
            return self
        room = max(MIN_CONNECTIONS, soft - RESERVED_FILES)
        return dataclasses.replace(self, max_connections=min(self.max_connections, room))


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


Answer = Callable[[Request], Reply]


class Exchange:
    limits: Limits
    stats: HttpStats
    answer: Answer
    headers: tuple[tuple[str, str], ...]
    tls: Any
    auth: AuthGate | None
    _conns: OrderedDict[Connection, None]
    _backlog: list[Connection]

    def _watch(self, conn: Connection, events: int) -> None:
        raise NotImplementedError

    def _close(self, conn: Connection) -> None:
        raise NotImplementedError

    def _ready(self, conn: Connection) -> None:
        if conn.state == HANDSHAKE:
            self._handshake(conn)
        elif conn.state == READING:
            self._read(conn)
        elif conn.state == WRITING:
            self._write(conn)
        elif conn.state == DRAINING:
            alive = conn.receive()
            conn.inbuf.clear()
            if not alive:
                self._close(conn)

    def _handshake(self, conn: Connection) -> None:
        from agent import tls

        conn.why = "slow"  # it sent something: a handshake under way
        try:
            wants = tls.handshake_step(conn.sock, self.tls[1])
        except OSError as err:
            log.debug("TLS handshake from %s failed: %s", conn.peer, err)
            self.stats.rejected["bad_request"] += 1
            self._close(conn)
            return
        if wants is not None:
            self._watch(conn, READ if wants == "read" else WRITE)
            return
        conn.state, conn.why = READING, "idle"
        self._watch(conn, READ)
        if conn.sock.pending():
            self._read(conn)

    def _read(self, conn: Connection) -> None:
        fresh = not conn.inbuf
        if not conn.receive():
            self._close(conn)
            return
        if fresh and conn.inbuf:
            conn.expect(time.monotonic() + self.limits.request_s, "slow")
        self._process(conn)

    def _process(self, conn: Connection) -> None:
        try:
            request = parse_head(conn.inbuf)
        except HttpError as err:
            self.stats.rejected[err.reason] += 1
            body = f"{err}: {err.status}\n".encode()
            self._send(conn, Reply(err.status, body, _PLAIN), keep_alive=False)
            return
        if request is None:
            return
        del conn.inbuf[: request.size]
        self._conns.move_to_end(conn)  # progress: a whole request
        conn.served += 1
        self._dispatch(conn, request)

    def _dispatch(self, conn: Connection, request: Request) -> None:
        verdict = PASS
        if self.auth is not None:
            header = request.headers.get("authorization")
            verdict = self.auth.admit(header, conn.peer, (conn, request))
        if verdict == PASS:
            self._respond(conn, request, self._answer(request))
        elif verdict == CHECKING:
            conn.state = CONN_CHECKING
            self._watch(conn, 0)
        elif verdict == DENY:
            self._unauthorized(conn, request)
        else:
            self.stats.rejected["throttled"] += 1
            body = b"too many failed authentications; try again later\n"
            reply = Reply(429, body, (*_PLAIN, ("Retry-After", "60")))
            self._send(conn, reply, keep_alive=False)

    def _answer(self, request: Request) -> Reply:
        try:
            return self.answer(request)
        except Exception as err:  # a bug: one line in the log, a 500, and the loop goes on
            log.error("answering %s failed: %s: %s", request.path, type(err).__name__, err)
            return Reply(500, b"internal error\n", _PLAIN)

    def _unauthorized(self, conn: Connection, request: Request) -> None:
        self.stats.rejected["unauthorized"] += 1
        reply = Reply(401, b"Unauthorized\n", (*_PLAIN, ("WWW-Authenticate", "Basic")))
        self._respond(conn, request, reply)

    def _respond(self, conn: Connection, request: Request, reply: Reply) -> None:
        self._send(conn, reply, request.keep_alive, request.head_only)

    def _send(
        self, conn: Connection, reply: Reply, keep_alive: bool, head_only: bool = False
    ) -> None:
        headers = [*reply.headers, *self.headers]
        head = response_head(reply.status, len(reply.body), headers, keep_alive)
        conn.close_after = not keep_alive
        conn.queue([head] if head_only else [head, reply.body])
        conn.expect(time.monotonic() + self.limits.write_s, "slow")
        self._write(conn)

    def _write(self, conn: Connection) -> None:
        sent = conn.send()
        if sent is None:
            self._watch(conn, WRITE)
        elif not sent:
            self._close(conn)
        elif conn.close_after:
            self._drain(conn)
        else:
            self._conns.move_to_end(conn)  # progress: a whole response
            conn.state = READING
            conn.expect(time.monotonic() + self.limits.keepalive_s, "idle")
            self._watch(conn, READ)
            if conn.inbuf:  # pipelined: served from the loop, not by recursion
                conn.expect(time.monotonic() + self.limits.request_s, "slow")
                self._backlog.append(conn)

    def _drain(self, conn: Connection) -> None:
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.state = DRAINING
        conn.inbuf.clear()
        conn.expect(time.monotonic() + DRAIN_S, "idle")
        self._watch(conn, READ)


_PLAIN = (("Content-Type", "text/plain; charset=utf-8"),)
