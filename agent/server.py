"""HTTP: `/metrics` (the latest snapshot, pre-rendered), `/healthz`, and `/` with links.

One thread per connection, each with a socket timeout, so a slow or idle client holds only its
own thread and no scrape waits on another: scrapes read an immutable snapshot and shared bytes.
With `--web-config` (agent.webconfig), the TLS handshake also runs in the connection's thread
(never in the accept loop, see agent.tls), and basic auth guards every path.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.exposition import Renderer
from agent.sampler import Snapshot

if TYPE_CHECKING:
    from agent.basicauth import BasicAuth
    from agent.webconfig import WebConfig

# http.server imports http.client, which imports ssl only to offer HTTPS client connections we
# never make; loading OpenSSL costs about 4 MiB of resident memory. Hide ssl during this one
# import (http.client is written to do without it); TLS serving imports ssl itself when asked.
_HIDE_SSL = "ssl" not in sys.modules and "http.client" not in sys.modules
if _HIDE_SSL:
    sys.modules["ssl"] = None  # type: ignore[assignment]
try:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
finally:
    if _HIDE_SSL:
        del sys.modules["ssl"]

log = logging.getLogger(__name__)

CLIENT_TIMEOUT_SECONDS = 10.0

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


class Handler(BaseHTTPRequestHandler):
    server: AgentHTTPServer
    timeout = CLIENT_TIMEOUT_SECONDS
    # Buffer the response so headers and body leave in one write, and send it at once:
    # two small writes on a keep-alive connection wait 40 ms on the client's delayed ACK.
    wbufsize = -1
    disable_nagle_algorithm = True
    server_version = f"suanli-agent/{__version__}"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if not self._authorized():
            return
        if path == "/metrics":
            self._metrics()
        elif path == "/healthz":
            healthy, why = self.server.state.health()
            self._send(200 if healthy else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
        elif path == "/":
            self._send(200, INDEX, "text/html; charset=utf-8")
        else:
            self._send(404, b"not found: try /metrics\n", "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:
        self._head_only = True
        try:
            self.do_GET()
        finally:
            self._head_only = False  # the next request on this keep-alive connection is a GET

    def _authorized(self) -> bool:
        """With basic auth configured every path needs it; else 401 and no data."""
        auth = self.server.auth
        if auth is None or auth.check(self.headers.get("Authorization")):
            return True
        body = b"Unauthorized\n"
        self._send(401, body, "text/plain; charset=utf-8", {"WWW-Authenticate": "Basic"})
        return False

    def _metrics(self) -> None:
        renderer, snapshot = self.server.state.view()
        if snapshot is None:
            self._send(503, b"no sample taken yet\n", "text/plain; charset=utf-8")
            return
        gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
        body, content_type = renderer.render(snapshot, self.headers.get("Accept", ""), gzipped)
        self._send(200, body, content_type, {"Content-Encoding": "gzip"} if gzipped else {})

    def _send(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not getattr(self, "_head_only", False):
            self.wfile.write(body)

    def end_headers(self) -> None:
        for name, value in self.server.extra_headers:
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class AgentHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], state: AgentState, web: WebConfig | None = None
    ) -> None:
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host or host == "" else socket.AF_INET
        self.state = state
        self.web = web
        self.auth: BasicAuth | None = web.basic_auth() if web else None
        self.extra_headers = web.headers if web else ()
        super().__init__((host or "::", address[1]), Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """In the connection's own thread: the TLS handshake (when enabled), then the requests."""
        if self.web is None or self.web.context is None:
            super().finish_request(request, client_address)
            return
        from agent.tls import accept

        allowed = self.web.tls.client_allowed_sans if self.web.tls else ()
        conn = accept(self.web.context, request, allowed)
        if conn is None:
            return
        try:
            Handler(conn, client_address, self)
        finally:
            self.shutdown_request(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets or times out is routine: no traceback on stderr."""
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    @property
    def scheme(self) -> str:
        return "https" if self.web is not None and self.web.context is not None else "http"

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # ":9445" means every address, IPv4 included
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def listen(
    address: tuple[str, int], state: AgentState, web: WebConfig | None = None
) -> AgentHTTPServer:
    """Bind and listen, or raise ServeError with one line that says why."""
    shown = f"{address[0] or '*'}:{address[1]}"
    try:
        return AgentHTTPServer(address, state, web)
    except OSError as err:
        if address[0] == "" and err.errno in (97, 99):  # no IPv6 on this host
            try:
                return AgentHTTPServer(("0.0.0.0", address[1]), state, web)
            except OSError as err4:
                err = err4
        reason = err.strerror or str(err)
        raise ServeError(f"cannot listen on {shown}: {reason}") from None


def serve_in_thread(server: AgentHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
