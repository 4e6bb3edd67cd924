"""Every simulated node's port, served from one asyncio event loop: HTTP/1.1 with keep-alive.

`GET /metrics` answers the node's pre-rendered exposition (OpenMetrics or text by `Accept`,
gzip by `Accept-Encoding`, as the agent's server negotiates), `GET /healthz` its sampler's
health (200 or 503), anything else 404; `HEAD` too; other methods 405. A request head over
16 KiB gets 431, a malformed one 400, and both close the connection; a connection idle for
IDLE_TIMEOUT_S is closed. No thread per connection: a scrape costs a dictionary lookup and a
socket write, and the loop's thread never renders (the scheduler renders after each sample,
in the format the node's scraper asked for last).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from agent import __version__
from agent.http_stats import HttpStats as NodeHttpStats

IDLE_TIMEOUT_S = 120.0  # longer than any scrape interval: Prometheus keeps connections open
MAX_HEAD = 16 * 1024
PLAIN = "text/plain; charset=utf-8"
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class Endpoint(Protocol):
    """What one port serves."""

    def metrics(self, accept: str, gzipped: bool) -> tuple[bytes, str] | None: ...

    def health(self) -> tuple[bool, str]: ...

    @property
    def http(self) -> NodeHttpStats:
        """The node's `suanli_http_*` counters, as the agent's server keeps them."""
        ...


@dataclass
class HttpStats:
    connections: int = 0
    requests: int = 0
    latencies: list[float] = field(default_factory=list)  # /metrics handling, since reset

    def take_latencies(self) -> list[float]:
        taken, self.latencies = self.latencies, []
        return taken


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]


def parse_head(head: bytes) -> Request | None:
    """The request line and headers, or None when malformed."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        return None
    if not version.startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        headers[name.lower()] = value.strip()
    return Request(method, target.split("?", 1)[0], version, headers)


def response(status: int, body: bytes, content_type: str, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\nServer: suanli-agent-simulate/{__version__}"
        f"\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


class Connection(asyncio.Protocol):
    """One client connection to one node's port."""

    def __init__(self, node: Endpoint, stats: HttpStats) -> None:
        self.node = node
        self.stats = stats
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.stats.connections += 1
        self.node.http.open += 1
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.connections -= 1
        self.node.http.open -= 1
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self.node.http.rejected["header_too_large"] += 1
                    self._finish(response(431, b"request head too large\n", PLAIN), False)
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            self._finish(*self._answer(head))
        self._arm()

    def _answer(self, head: bytes) -> tuple[bytes, bool]:
        """(response, keep the connection open)."""
        request = parse_head(head)
        if request is None or _has_body(request):  # no request here takes a body
            self.node.http.rejected["bad_request"] += 1
            return response(400, b"bad request\n", PLAIN), False
        self.stats.requests += 1
        keep = _keep_alive(request)
        if request.method not in ("GET", "HEAD"):
            self.node.http.rejected["method"] += 1
            return response(405, b"only GET and HEAD\n", PLAIN, "Allow: GET, HEAD\r\n"), keep
        reply = self._route(request)
        if request.method == "HEAD":
            reply = reply[: reply.index(b"\r\n\r\n") + 4]
        return reply, keep

    def _route(self, request: Request) -> bytes:
        if request.path == "/metrics":
            began = time.perf_counter()
            gzipped = "gzip" in request.headers.get("accept-encoding", "")
            found = self.node.metrics(request.headers.get("accept", ""), gzipped)
            if found is None:
                return response(503, b"no sample taken yet\n", PLAIN)
            body, content_type = found
            reply = response(200, body, content_type, _gzip_header(gzipped))
            self.stats.latencies.append(time.perf_counter() - began)
            return reply
        if request.path == "/healthz":
            healthy, why = self.node.health()
            return response(200 if healthy else 503, (why + "\n").encode(), PLAIN)
        return response(404, b"not found: try /metrics\n", PLAIN)

    def _finish(self, reply: bytes, keep: bool) -> None:
        assert self.transport is not None
        self.transport.write(reply)
        if not keep:
            self.transport.close()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(IDLE_TIMEOUT_S, self._idle)

    def _idle(self) -> None:
        if self.transport is not None:
            self.node.http.evicted["idle"] += 1
            self.transport.close()


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length", "0")
    return length != "0" or "transfer-encoding" in request.headers


def _keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


def _gzip_header(gzipped: bool) -> str:
    return "Content-Encoding: gzip\r\n" if gzipped else ""


class MultiPortServer:
    """One asyncio server per (node, listening socket), all on the running loop."""

    def __init__(self, nodes: Sequence[Endpoint], sockets: Sequence[socket.socket]) -> None:
        self.nodes = list(nodes)
        self.sockets = list(sockets)
        self.stats = HttpStats()
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for node, sock in zip(self.nodes, self.sockets, strict=True):
            server = await loop.create_server(partial(Connection, node, self.stats), sock=sock)
            self._servers.append(server)

    def close(self) -> None:
        for server in self._servers:
            server.close()
