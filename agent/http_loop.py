"""The HTTP server: one thread, one event loop (selectors), a fixed cap on connections.

No client can hold a thread, and none can hold memory beyond its bounded buffers
(agent.http_conn). Each connection has one deadline at a time: its first request (TLS handshake
included) or the next one on a kept-alive connection (`idle`), a request from its first byte to
its blank line, or a response until the client has taken it all (`slow`). The deadline is for
the whole request, not per read, so dripping a byte at a time does not extend it. At the cap, a
new connection evicts the one that made no progress for longest (`capacity`). Basic auth runs
its bcrypt checks off the loop (agent.http_auth).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.http_auth import CHECKING, DENY, PASS, AuthGate
from agent.http_conn import CHECKING as CONN_CHECKING
from agent.http_conn import CLOSED, DRAINING, HANDSHAKE, READING, WRITING, Connection
from agent.http_request import HttpError, Request, parse_head, response_head
from agent.http_stats import HttpStats

log = logging.getLogger(__name__)

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
TICK_S = 0.1
DRAIN_S = 1.0  # after an answer and before closing: read what the client still sends, so the
# kernel does not reset the connection (and discard the answer) over unread bytes
ACCEPT_BURST = 64
_WAKE = object()


@dataclass(frozen=True)
class Limits:
    max_connections: int = 512
    first_request_s: float = 10.0  # a new connection's first request, TLS handshake included
    keepalive_s: float = 60.0  # between requests on a kept-alive connection
    request_s: float = 10.0  # one request, from its first byte to its blank line
    write_s: float = 10.0  # one response, until the client has read all of it


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


Answer = Callable[[Request], Reply]


class LoopServer:
    def __init__(
        self,
        listener: socket.socket,
        answer: Answer,
        limits: Limits | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        stats: HttpStats | None = None,
    ) -> None:
        self.listener, self.answer, self.limits = listener, answer, limits or Limits()
        self.headers, self.stats = headers, stats or HttpStats()
        self.tls: Any = None  # (ssl.SSLContext, allowed SANs) when serving TLS
        self.auth: AuthGate | None = None
        self._again: tuple[type[Exception], ...] = (BlockingIOError, InterruptedError)
        self._conns: OrderedDict[Connection, None] = OrderedDict()  # least progress first
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, READ, _WAKE)
        listener.setblocking(False)
        self._selector.register(listener, READ, None)
        self._accepting_at = 0.0  # when accepting paused (no file descriptor left): resume time
        self._backlog: list[Connection] = []  # pipelined requests left in a buffer
        self._running = True
        self._stopped = False

    @property
    def server_address(self) -> Any:
        return self.listener.getsockname()

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    def use_tls(self, context: Any, allowed_sans: tuple[str, ...]) -> None:
        from agent import tls

        self.tls = (context, allowed_sans)
        self._again = (BlockingIOError, InterruptedError, *tls.AGAIN)

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # already awake (buffer full), or closed
            self._wake_w.send(b"x")

    # --- the loop ---------------------------------------------------------------------------

    def serve_forever(self) -> None:
        next_sweep = 0.0
        while self._running:
            for key, _mask in self._selector.select(TICK_S):
                if key.data is None:
                    self._accept()
                elif key.data is _WAKE:
                    self._woken()
                elif key.data.state != CLOSED:
                    self._ready(key.data)
            while self._backlog:
                conn = self._backlog.pop()
                if conn.state == READING:
                    self._process(conn)
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + TICK_S
        self._stopped = True

    def shutdown(self) -> None:
        self._running = False
        self.wake()
        for _ in range(200):
            if self._stopped:
                return
            time.sleep(0.01)

    def server_close(self) -> None:
        for conn in list(self._conns):
            self._close(conn)
        if self.auth is not None:
            self.auth.close()
        self._selector.close()
        for sock in (self.listener, self._wake_r, self._wake_w):
            sock.close()

    def _woken(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass
        while self.auth is not None and self.auth.done:
            (conn, request), verified = self.auth.done.popleft()
            self.auth.settle(conn.peer, verified)
            if conn.state != CONN_CHECKING:
                continue  # closed meanwhile
            if verified:
                self._respond(conn, request, self.answer(request))
            else:
                self._unauthorized(conn, request)

    # --- accepting and evicting -------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(ACCEPT_BURST):
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._out_of_descriptors()
                return  # ECONNABORTED and the like: that client is gone
            if len(self._conns) >= self.limits.max_connections:
                self._evict_oldest()
            self._open(sock, address)

    def _out_of_descriptors(self) -> None:
        """Free one by evicting the oldest; with none to evict, stop accepting for a tick."""
        if not self._evict_oldest():
            self._selector.unregister(self.listener)
            self._accepting_at = time.monotonic() + TICK_S
            log.warning("no file descriptor left to accept a connection; pausing accepts")

    def _evict_oldest(self) -> bool:
        for conn in self._conns:
            if conn.state != CONN_CHECKING:
                self.stats.evicted["capacity"] += 1
                self._close(conn)
                return True
        return False

    def _open(self, sock: socket.socket, address: Any) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = str(address[0]) if isinstance(address, tuple) else str(address)
        wrapped: Any = sock
        if self.tls is not None:
            from agent import tls

            try:
                wrapped = tls.wrap(self.tls[0], sock)
            except OSError:
                sock.close()
                return
        conn = Connection(wrapped, peer, time.monotonic(), self._again)
        conn.expect(time.monotonic() + self.limits.first_request_s, "idle")
        conn.state = HANDSHAKE if self.tls is not None else READING
        self._conns[conn] = None
        self.stats.open += 1
        self._watch(conn, READ)

    def _sweep(self, now: float) -> None:
        if self._accepting_at and now >= self._accepting_at:
            self._accepting_at = 0.0
            self._selector.register(self.listener, READ, None)
        for conn in [c for c in self._conns if c.deadline <= now and c.state != CONN_CHECKING]:
            if conn.state != DRAINING:
                self.stats.evicted[conn.why] += 1
            self._close(conn)

    def _watch(self, conn: Connection, events: int) -> None:
        if conn.events == events:
            return
        if conn.events == 0:
            self._selector.register(conn.sock, events, conn)
        elif events == 0:
            self._selector.unregister(conn.sock)
        else:
            self._selector.modify(conn.sock, events, conn)
        conn.events = events

    def _close(self, conn: Connection) -> None:
        if conn.state == CLOSED:
            return
        self._watch(conn, 0)
        conn.close()
        self._conns.pop(conn, None)
        self.stats.open -= 1

    # --- one connection ---------------------------------------------------------------------

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
        self._dispatch(conn, request)

    def _dispatch(self, conn: Connection, request: Request) -> None:
        verdict = PASS
        if self.auth is not None:
            header = request.headers.get("authorization")
            verdict = self.auth.admit(header, conn.peer, (conn, request))
        if verdict == PASS:
            self._respond(conn, request, self.answer(request))
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
