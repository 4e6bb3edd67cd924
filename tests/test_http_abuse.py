"""Hostile and broken HTTP clients never crash the agent nor slow a normal scrape.

One agent process on 127.0.0.1 serves every test of this module; each test ends by checking
that it still answers, and the last one that its log holds no traceback. Every socket has a
timeout and is closed.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import LOOPBACK, http_get

if TYPE_CHECKING:
    from conftest import AgentProcess

StartAgent = Callable[..., "AgentProcess"]
TIMEOUT = 5.0


@pytest.fixture
def agent(agent_process: StartAgent, tmp_path: Path) -> Iterator[AgentProcess]:
    started = agent_process("--fake", "h100-8", "--interval", "500ms")
    yield started
    assert fast_scrape(started) < 1.0, "the agent still answers after the abuse"
    assert started.proc.poll() is None
    assert "Traceback" not in started.stderr()


def fast_scrape(agent: AgentProcess) -> float:
    began = time.monotonic()
    response = http_get(agent.port, "/metrics", timeout=TIMEOUT)
    assert response.status == 200 and b"suanli_gpu_up" in response.body
    return time.monotonic() - began


def raw(agent: AgentProcess, data: bytes, read_until_close: bool = True) -> bytes:
    """Send `data` on a fresh connection; what came back until the server closed (or 64 KiB)."""
    with closing(socket.create_connection((LOOPBACK, agent.port), timeout=TIMEOUT)) as sock:
        with suppress(BrokenPipeError, ConnectionResetError):  # it may answer and close first
            sock.sendall(data)
        chunks: list[bytes] = []
        try:
            while sum(map(len, chunks)) < 65536:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_until_close:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


def status(reply: bytes) -> int:
    """The status code; for a request line it cannot parse, http.server answers as HTTP/0.9
    would (no status line), with the code in the error page: read it from there."""
    if reply.startswith(b"HTTP/"):
        return int(reply.split(b" ", 2)[1])
    found = re.search(rb"Error code: (\d{3})", reply)
    return int(found.group(1)) if found else 0


@pytest.mark.parametrize(
    "line",
    [
        b"GARBAGE\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x00\xff\r\n\r\n",
    ],
)
def test_malformed_request_lines_get_400(agent: AgentProcess, line: bytes) -> None:
    reply = raw(agent, line)
    assert status(reply) in (400, 505), reply[:200]
    assert b"suanli_" not in reply


def test_a_huge_header_is_refused(agent: AgentProcess) -> None:
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    reply = raw(agent, request)
    assert status(reply) in (400, 431), reply[:200]
    many = b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
    assert status(raw(agent, many + b"\r\n")) in (400, 431)


def test_idle_connections_do_not_slow_a_scrape(agent: AgentProcess) -> None:
    idle: list[socket.socket] = []
    try:
        for _ in range(200):
            idle.append(socket.create_connection((LOOPBACK, agent.port), timeout=TIMEOUT))
        assert fast_scrape(agent) < 1.0
    finally:
        for sock in idle:
            sock.close()


def test_a_byte_by_byte_client_does_not_block_others(agent: AgentProcess) -> None:
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    replies: list[bytes] = []

    def slow() -> None:
        with closing(socket.create_connection((LOOPBACK, agent.port), timeout=TIMEOUT)) as sock:
            for i in range(len(request)):
                sock.sendall(request[i : i + 1])
                time.sleep(0.03)
            replies.append(sock.recv(16))

    thread = threading.Thread(target=slow)
    thread.start()
    while thread.is_alive():
        assert fast_scrape(agent) < 1.0
        time.sleep(0.1)
    thread.join(TIMEOUT)
    assert replies and status(replies[0]) == 200


def test_wrong_paths_and_methods_get_no_data(agent: AgentProcess) -> None:
    assert http_get(agent.port, "/nope").status == 404
    assert http_get(agent.port, "/metrics/../../etc/passwd").status == 404
    for method in (b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"):
        reply = raw(agent, method + b" /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert status(reply) in (405, 501), reply[:200]
        assert b"suanli_" not in reply


def test_a_get_with_a_body_and_http10_and_pipelining(agent: AgentProcess) -> None:
    body = b"x" * 1000
    with_body = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    reply = raw(agent, with_body + b"Content-Length: 1000\r\n\r\n" + body)
    assert status(reply) in (200, 400)
    old = raw(agent, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert status(old) == 200 and b"suanli_gpu_up" in old
    two = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2
    piped = raw(agent, two + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert piped.count(b"HTTP/1.1 200") == 3, piped[:500]
