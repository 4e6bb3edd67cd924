"""HTTP: `/metrics` (the latest snapshot, pre-rendered), `/healthz`, and `/` with links.

Served by one event-loop thread (agent.http_loop) with a cap on connections and deadlines, so no
client, slow, idle or hostile, can hold a thread or stop a scrape: scrapes read an immutable
snapshot and bytes rendered once per snapshot, sent without a copy. With `--web-config`
(agent.webconfig) TLS handshakes run inside the loop (agent.tls) and basic auth guards every
path (agent.http_auth).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent import __version__
from agent.exposition import Renderer
from agent.http_auth import AuthGate
from agent.http_loop import Limits, Reply
from agent.http_loop import LoopServer as AgentHTTPServer
from agent.http_request import Request
from agent.http_stats import HttpStats
from agent.sampler import Snapshot

if TYPE_CHECKING:
    from agent.webconfig import WebConfig

__all__ = ["AgentHTTPServer", "AgentState", "Limits", "ServeError", "listen", "serve_in_thread"]

log = logging.getLogger(__name__)

BACKLOG = 1024  # connections the kernel queues before the loop accepts them

INDEX = b"""<!doctype html>
<html><head><title>Suanli agent</title></head><body>
<h1>Suanli agent</h1>
<p>GPU and CPU metrics for Prometheus.</p>
<ul><li><a href="/metrics">/metrics</a></li><li><a href="/healthz">/healthz</a></li></ul>
</body></html>
"""


class ServeError(Exception):
    """The server cannot listen: one line that says why."""


class AgentState:
    """What the handlers read: the latest snapshot, the renderer and the health check.

    The three are held as one tuple, replaced in one assignment by `swap` (a configuration
    reload), so a request sees either the old agent or the new one, never a mix.
    """

    def __init__(
        self,
        renderer: Renderer,
        latest: Callable[[], Snapshot | None],
        health: Callable[[], tuple[bool, str]],
    ) -> None:
        self._parts = (renderer, latest, health)

    def swap(
        self,
        renderer: Renderer,
        latest: Callable[[], Snapshot | None],
        health: Callable[[], tuple[bool, str]],
    ) -> None:
        self._parts = (renderer, latest, health)

    @property
    def renderer(self) -> Renderer:
        return self._parts[0]

    def latest(self) -> Snapshot | None:
        return self._parts[1]()

    def health(self) -> tuple[bool, str]:
        return self._parts[2]()

    def view(self) -> tuple[Renderer, Snapshot | None]:
        """The renderer and its agent's latest snapshot, from the same agent."""
        renderer, latest, _ = self._parts
        return renderer, latest()


def answer(state: AgentState, request: Request) -> Reply:
    """The reply to an admitted GET or HEAD: served from the state's latest snapshot."""
    path = request.path
    if path == "/metrics":
        renderer, snapshot = state.view()
        if snapshot is None:
            return Reply(503, b"no sample taken yet\n", _PLAIN)
        gzipped = "gzip" in request.headers.get("accept-encoding", "")
        body, content_type = renderer.render(snapshot, request.headers.get("accept", ""), gzipped)
        zipped = (("Content-Encoding", "gzip"),) if gzipped else ()
        return Reply(200, body, (("Content-Type", content_type), *zipped))
    if path == "/healthz":
        healthy, why = state.health()
        return Reply(200 if healthy else 503, (why + "\n").encode(), _PLAIN)
    if path == "/":
        return Reply(200, INDEX, (("Content-Type", "text/html; charset=utf-8"),))
    return Reply(404, b"not found: try /metrics\n", _PLAIN)


_PLAIN = (("Content-Type", "text/plain; charset=utf-8"),)


def listen(
    address: tuple[str, int],
    state: AgentState,
    web: WebConfig | None = None,
    limits: Limits | None = None,
    stats: HttpStats | None = None,
) -> AgentHTTPServer:
    """Bind and listen, or raise ServeError with one line that says why."""
    shown = f"{address[0] or '*'}:{address[1]}"
    try:
        listener = _bind(address)
    except OSError as err:
        raise ServeError(f"cannot listen on {shown}: {err.strerror or err}") from None
    headers = (("Server", f"suanli-agent/{__version__}"), *(web.headers if web else ()))
    server = AgentHTTPServer(
        listener, lambda r: answer(state, r), limits or Limits().fitted(), headers, stats
    )
    if web is not None and web.context is not None:
        server.use_tls(web.context, web.tls.client_allowed_sans if web.tls else ())
    auth = web.basic_auth() if web else None
    if auth is not None:
        server.auth = AuthGate(auth, server.wake)
    return server


def _bind(address: tuple[str, int]) -> socket.socket:
    host, port = address
    if ":" in host or host == "":
        try:
            return socket.create_server(
                (host or "::", port), family=socket.AF_INET6, backlog=BACKLOG, dualstack_ipv6=True
            )
        except OSError as err:
            if host != "" or err.errno not in (97, 99):  # 97, 99: no IPv6 on this host
                raise
            host = "0.0.0.0"
    return socket.create_server((host, port), backlog=BACKLOG)


def serve_in_thread(server: AgentHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
