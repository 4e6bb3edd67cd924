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
from typing import Any

from agent.http_auth import AuthGate
from agent.http_conn import CHECKING as CONN_CHECKING
from agent.http_conn import CLOSED, DRAINING, HANDSHAKE, READING, Connection
from agent.http_exchange import READ, Answer, Exchange, Limits, Reply
from agent.http_stats import HttpStats

log = logging.getLogger(__name__)

__all__ = ["Answer", "Limits", "LoopServer", "Reply"]

TICK_S = 0.1
ACCEPT_BURST = 64
_WAKE = object()


class LoopServer(Exchange):
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
            try:
                self._turn()
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + TICK_S
            except Exception as err:  # a bug outside any one connection: logged, loop goes on
                log.error("HTTP loop: %s: %s", type(err).__name__, err)
                time.sleep(TICK_S)
        self._stopped = True

    def _turn(self) -> None:
        """Handle what is ready, then the pipelined requests it left."""
        for key, _mask in self._selector.select(TICK_S):
            if key.data is None:
                self._accept()
            elif key.data is _WAKE:
                self._woken()
            elif key.data.state != CLOSED:
                self._guarded(self._ready, key.data)
        while self._backlog:
            conn = self._backlog.pop()
            if conn.state == READING:
                self._guarded(self._process, conn)

    def _guarded(self, step: Callable[[Connection], None], conn: Connection) -> None:
        """A bug met by one connection closes that connection, never the loop."""
        try:
            step(conn)
        except Exception as err:
            log.error("HTTP connection from %s failed: %s: %s", conn.peer, type(err).__name__, err)
            self._close(conn)

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
                self._respond(conn, request, self._answer(request))
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
        """Close the connection that made no progress for longest, preferring one that never
        completed a request (a scraper's kept-alive connection outlives idle attackers)."""
        victim = next((c for c in self._conns if not c.served and c.state != CONN_CHECKING), None)
        if victim is None:
            victim = next((c for c in self._conns if c.state != CONN_CHECKING), None)
        if victim is None:
            return False
        self.stats.evicted["capacity"] += 1
        self._close(victim)
        return True

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
