"""Under systemd: READY when serving, WATCHDOG while sampling progresses, STOPPING on SIGTERM."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.systemd import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10.0)
    yield path, sock
    sock.close()


def receive_until(sock: socket.socket, wanted: str, deadline_s: float = 10.0) -> list[str]:
    """Messages received until one contains `wanted`."""
    seen: list[str] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        message = sock.recv(4096).decode()
        seen.append(message)
        if wanted in message:
            return seen
    raise AssertionError(f"never received {wanted!r}; got {seen}")


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier(environ={})
    assert not notifier.enabled
    assert notifier.ready() is False


def test_an_abstract_socket_address_is_understood() -> None:
    name = f"suanli-test-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        assert Notifier(environ={"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(100).startswith(b"READY=1")


def test_a_dead_socket_is_logged_not_raised(tmp_path: Path) -> None:
    notifier = Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.watchdog() is False


def test_the_agent_notifies_ready_watchdog_and_stopping(
    agent_process: Callable[..., object], notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
    agent = agent_process("--fake", "h100-8", "--interval", "200ms", env=env)
    messages = receive_until(sock, "READY=1")
    assert messages[0].startswith("READY=1")
    receive_until(sock, "WATCHDOG=1")
    receive_until(sock, "WATCHDOG=1")
    assert agent.stop() == 0  # type: ignore[attr-defined]
    receive_until(sock, "STOPPING=1")
