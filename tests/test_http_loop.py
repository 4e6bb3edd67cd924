"""The event-loop HTTP server on its own: the connection cap, the deadlines, the header cap and
the basic-auth throttle, each against a server in this process with short limits."""

from __future__ import annotations

import base64
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import closing, suppress

import bcrypt
import pytest

from agent.auth_throttle import Throttle
from agent.basicauth import BasicAuth
from agent.http_auth import AuthGate
from agent.http_loop import Limits, LoopServer, Reply
from agent.http_request import MAX_HEAD_BYTES, Request
from agent.server import serve_in_thread
from tests.conftest import LOOPBACK

GET = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
BIG = b"y" * (8 << 20)


def ok(request: Request) -> Reply:
    if request.path == "/boom":
        raise RuntimeError("a bug in a handler")
    return Reply(200, BIG if request.path == "/big" else b"hello\n")


@pytest.fixture
def serve() -> Iterator[Callable[..., LoopServer]]:
    servers: list[LoopServer] = []

    def start(limits: Limits, users: dict[str, bytes] | None = None) -> LoopServer:
        listener = socket.create_server((LOOPBACK, 0))
        server = LoopServer(listener, ok, limits)
        if users:
            server.auth = AuthGate(BasicAuth(users), server.wake)
        serve_in_thread(server)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def connect(server: LoopServer) -> socket.socket:
    return socket.create_connection(server.server_address[:2], timeout=5)


def exchange(server: LoopServer, request: bytes = GET) -> bytes:
    with closing(connect(server)) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(2)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_at_the_cap_a_new_client_evicts_the_oldest_idle_one(serve: Callable[..., LoopServer]):
    server = serve(Limits(max_connections=8))
    idle = [connect(server) for _ in range(8)]
    try:
        time.sleep(0.2)
        assert exchange(server).startswith(b"HTTP/1.1 200 OK")
        assert closed_by_server(idle[0])  # the oldest made no progress: it went first
        assert server.stats.evicted["capacity"] >= 1
        assert server.stats.open <= 8
    finally:
        for sock in idle:
            sock.close()


def test_at_the_cap_a_served_kept_alive_connection_outlives_idle_ones(
    serve: Callable[..., LoopServer],
) -> None:
    server = serve(Limits(max_connections=8))
    with closing(connect(server)) as scraper:
        scraper.sendall(GET)
        assert scraper.recv(65536).startswith(b"HTTP/1.1 200 OK")  # kept alive, then idle
        idle = [connect(server) for _ in range(20)]  # churn past the cap, long after it
        try:
            time.sleep(0.2)
            scraper.sendall(GET)
            assert scraper.recv(65536).startswith(b"HTTP/1.1 200 OK")
        finally:
            for sock in idle:
                sock.close()
    assert server.stats.evicted["capacity"] >= 13


def test_the_request_deadline_is_for_the_whole_request_not_per_read(
    serve: Callable[..., LoopServer],
) -> None:
    server = serve(Limits(request_s=0.5))
    with closing(connect(server)) as sock:
        began = time.monotonic()
        with suppress(OSError):
            for byte in GET[:-2]:  # a byte every 50 ms: each read is quick, the request is not
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
        assert closed_by_server(sock)
        assert 0.4 < time.monotonic() - began < 1.5
    assert server.stats.evicted["slow"] == 1


def test_an_idle_connection_is_closed_at_its_first_request_deadline(
    serve: Callable[..., LoopServer],
) -> None:
    server = serve(Limits(first_request_s=0.3))
    with closing(connect(server)) as sock:
        began = time.monotonic()
        assert closed_by_server(sock)
        assert 0.25 < time.monotonic() - began < 1.0
    assert server.stats.evicted["idle"] == 1


def test_a_client_that_does_not_read_its_answer_is_evicted(
    serve: Callable[..., LoopServer],
) -> None:
    server = serve(Limits(write_s=0.5))
    with closing(connect(server)) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")  # 8 MiB, never read
        deadline = time.monotonic() + 3
        while server.stats.evicted["slow"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert server.stats.evicted["slow"] == 1
    assert exchange(server).startswith(b"HTTP/1.1 200 OK")


def test_request_heads_are_capped_and_the_reader_stops_there(
    serve: Callable[..., LoopServer],
) -> None:
    server = serve(Limits())
    with closing(connect(server)) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 1024))
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert server.stats.rejected["header_too_large"] == 1


def test_pipelined_requests_are_answered_in_order(serve: Callable[..., LoopServer]) -> None:
    server = serve(Limits())
    many = GET * 200 + b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with closing(connect(server)) as sock:
        sock.sendall(many)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    assert got.count(b"HTTP/1.1 200 OK") == 201


def test_a_failing_handler_answers_500_and_the_loop_serves_on(
    serve: Callable[..., LoopServer],
) -> None:
    server = serve(Limits())
    assert exchange(server, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 500 ")
    assert exchange(server).startswith(b"HTTP/1.1 200 OK")


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def authed(server: LoopServer, user: str, password: str) -> int:
    request = b"GET /x HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic(user, password) + b"\r\n\r\n"
    return int(exchange(server, request).split(b" ", 2)[1])


def test_failed_logins_are_throttled_per_client_and_a_verified_scraper_is_not(
    serve: Callable[..., LoopServer],
) -> None:
    users = {"prometheus": bcrypt.hashpw(b"right", bcrypt.gensalt(4))}
    server = serve(Limits(), users)
    assert authed(server, "prometheus", "right") == 200  # verified once, then cached
    statuses = [authed(server, "prometheus", f"wrong{i}") for i in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    assert authed(server, "prometheus", "right") == 200
    assert server.stats.rejected["unauthorized"] == 10
    assert server.stats.rejected["throttled"] == 2


def test_the_overall_throttle_counts_every_client() -> None:
    now = [0.0]
    throttle = Throttle(per_client=10, overall=20, window=60, clock=lambda: now[0])
    for i in range(20):
        assert throttle.allowed(f"10.0.0.{i}")
        throttle.failed(f"10.0.0.{i}")
    assert not throttle.allowed("10.0.0.99")
    now[0] = 61.0  # the window has passed
    assert throttle.allowed("10.0.0.99")
    # checks still under way count: ten concurrent attempts cannot all slip in at once
    assert throttle.allowed("10.0.0.7", checking=9)
    assert not throttle.allowed("10.0.0.7", checking=10)


def test_an_unknown_user_takes_as_long_as_a_known_one() -> None:
    auth = BasicAuth({"prometheus": bcrypt.hashpw(b"right", bcrypt.gensalt(11))})

    def median_s(user: str) -> float:
        times = []
        for _ in range(3):
            began = time.perf_counter()
            assert not auth.verify(basic(user, "wrong").decode())
            times.append(time.perf_counter() - began)
        return statistics.median(times)

    known, unknown = median_s("prometheus"), median_s("nobody")
    assert 0.7 < unknown / known < 1.4, (known, unknown)
