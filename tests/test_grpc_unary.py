"""The agent's own gRPC client reads the kubelet whatever a real HTTP/2 server sends.

A scripted server (tests/h2_script.py: frames packed by hand, header blocks by the `hpack`
package) sends what Go's and grpc C-core's servers may send: SETTINGS and PINGs to acknowledge
before the answer, header blocks padded, with priority, in CONTINUATION frames, Huffman-coded
and indexed; padded DATA; Trailers-Only statuses; and the failures a kubelet can show (GOAWAY,
RST_STREAM, garbage, a connection closed mid-frame, no answer at all). Each reaches the status
metric as the reason an operator reads. Answers are encoded by protobuf's generated classes.
"""

from __future__ import annotations

import random
import socket
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.hw.pod_resources import KubeletError, PodResourcesClient
from suanli_sim.podresources_v1 import api_pb2
from tests import h2_script as h2
from tests.h2_script import Connection, ScriptedServer

GPUS = [f"GPU-{n}b3e5c7a-4f21-9d8e-1c6b-0a2f4e7d9{n}c1" for n in range(4)]
LIST = api_pb2.ListPodResourcesResponse(
    pod_resources=[
        api_pb2.PodResources(
            name="qwen-72b-infer-7d9f8",
            namespace="llm-serving",
            containers=[
                api_pb2.ContainerResources(
                    name="vllm",
                    devices=[
                        api_pb2.ContainerDevices(resource_name="nvidia.com/gpu", device_ids=GPUS)
                    ],
                    cpu_ids=[4, 5, 6, 7],
                )
            ],
        )
    ]
).SerializeToString()
ALLOCATABLE = api_pb2.AllocatableResourcesResponse(
    devices=[api_pb2.ContainerDevices(resource_name="nvidia.com/gpu", device_ids=GPUS)]
).SerializeToString()
OK_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]
Script = Callable[[Connection], None]


@pytest.fixture
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="h2", dir="/tmp") as made:
        yield Path(made)


def serve(folder: Path, script: Script) -> tuple[ScriptedServer, PodResourcesClient]:
    server = ScriptedServer(folder / "kubelet.sock", script)
    return server, PodResourcesClient(str(folder / "kubelet.sock"), timeout_s=0.5)


def answer(conn: Connection, message: bytes, status: int = 0) -> None:
    """A plain answer: headers, one DATA frame, trailers."""
    conn.send(
        h2.frame(h2.HEADERS, h2.END_HEADERS, 1, conn.headers(OK_HEADERS)),
        h2.frame(h2.DATA, 0, 1, h2.grpc_message(message)),
        h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1, conn.headers(trailers(status))),
    )


def trailers(status: int, message: str = "") -> list[tuple[str, str]]:
    return [("grpc-status", str(status)), ("grpc-message", message)]


def kubelet(list_script: Script, allocatable_script: Script | None = None) -> Script:
    """A script per method: `List`'s, then GetAllocatableResources' (a plain answer)."""

    def script(conn: Connection) -> None:
        path = conn.read_request()[":path"]
        if path == "/v1.PodResourcesLister/List":
            list_script(conn)
        elif allocatable_script is not None:
            allocatable_script(conn)
        else:
            answer(conn, ALLOCATABLE)
        conn.sock.recv(1)  # until the client hangs up

    return script


def what_real_servers_send(conn: Connection) -> None:
    conn.send(h2.frame(h2.SETTINGS, 0, 0, struct.pack(">HIHI", 5, 16384, 4, 65535)))
    conn.expect(h2.SETTINGS, h2.ACK)
    conn.send(h2.frame(h2.PING, 0, 0, b"keepaliv"))
    assert conn.expect(h2.PING, h2.ACK) == b"keepaliv"
    block = conn.headers([*OK_HEADERS, ("grpc-accept-encoding", "identity,deflate,gzip")])
    # HEADERS padded (pad length 3) with a priority (5 bytes), the block in three frames
    first = bytes([3]) + struct.pack(">IB", 0, 15) + block[:4] + b"\0\0\0"
    conn.send(
        h2.frame(h2.WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)),
        h2.frame(h2.HEADERS, h2.PADDED | h2.PRIORITY, 1, first),
        h2.frame(h2.CONTINUATION, 0, 1, block[4:6]),
        h2.frame(h2.CONTINUATION, h2.END_HEADERS, 1, block[6:]),
    )
    body = h2.grpc_message(LIST)
    for start in range(0, len(body), 100):  # padded DATA frames of 100 bytes
        padded = bytes([7]) + body[start : start + 100] + bytes(7)
        conn.send(h2.frame(h2.DATA, h2.PADDED, 1, padded))
    block = conn.headers(trailers(0))
    conn.send(
        h2.frame(h2.HEADERS, h2.END_STREAM, 1, block[:1]),
        h2.frame(h2.CONTINUATION, h2.END_HEADERS, 1, block[1:]),
    )


def test_what_real_servers_send_reads_as_the_pods(folder: Path) -> None:
    server, client = serve(folder, kubelet(what_real_servers_send))
    try:
        read = client.read({("llm-serving", "qwen-72b-infer-7d9f8"): "uid-1"})
        assert sorted(read.holders) == sorted(GPUS)
        assert {ref.job for refs in read.holders.values() for ref in refs} == {"uid-1"}
        assert read.allocatable == frozenset(GPUS)
        assert not server.errors, server.errors
        assert_a_grpc_request(server.connections[0])
    finally:
        server.close()


def assert_a_grpc_request(conn: Connection) -> None:
    """The request as gRPC's PROTOCOL-HTTP2 has it, with windows a 16 MiB answer fits in."""
    request = conn.request
    assert request[":method"] == "POST" and request[":scheme"] == "http"
    assert request["content-type"] == "application/grpc" and request["te"] == "trailers"
    assert request["grpc-timeout"].endswith("m") and 0 < int(request["grpc-timeout"][:-1]) <= 500
    settings = [f for f in conn.frames if f[0] == h2.SETTINGS and not f[1]]
    window = dict(struct.iter_unpack(">HI", settings[0][3]))[4]
    updates = [f for f in conn.frames if f[0] == h2.WINDOW_UPDATE and f[2] == 0]
    connection_window = 65535 + struct.unpack(">I", updates[0][3])[0]
    assert min(window, connection_window) >= 16 * 1024 * 1024 + 5


def trailers_only(status: int) -> Script:
    def script(conn: Connection) -> None:
        block = conn.headers([*OK_HEADERS, *trailers(status, "PodResources API is disabled")])
        conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1, block))

    return script


def test_get_allocatable_unimplemented_leaves_the_holders(folder: Path) -> None:
    server, client = serve(folder, kubelet(lambda conn: answer(conn, LIST), trailers_only(12)))
    try:
        read = client.read()
        assert sorted(read.holders) == sorted(GPUS) and read.allocatable is None
    finally:
        server.close()


def sends(*chunks: bytes, close: bool = False) -> Script:
    def script(conn: Connection) -> None:
        conn.send(*chunks)
        if close:
            conn.sock.close()

    return script


def headers_then(conn: Connection, *chunks: bytes) -> None:
    conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS, 1, conn.headers(OK_HEADERS)), *chunks)


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (trailers_only(12), "unimplemented"),  # UNIMPLEMENTED
        (trailers_only(7), "permission"),  # PERMISSION_DENIED
        (trailers_only(14), "refused"),  # UNAVAILABLE
        (lambda conn: answer(conn, b"", status=16), "permission"),  # UNAUTHENTICATED, trailers
        (lambda conn: answer(conn, b"", status=13), "bad_answer"),  # INTERNAL
        (sends(h2.frame(h2.GOAWAY, 0, 0, struct.pack(">II", 0, 0))), "refused"),
        (sends(h2.frame(h2.RST_STREAM, 0, 1, struct.pack(">I", 7))), "refused"),  # REFUSED_STREAM
        (
            sends(h2.frame(h2.RST_STREAM, 0, 1, struct.pack(">I", 2))),
            "bad_answer",
        ),  # INTERNAL_ERROR
        (sends(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), "bad_answer"),
        (sends(b"\x00\x00\x40\x00\x04", close=True), "refused"),  # closed mid-frame
        (sends(h2.frame(h2.DATA, 0, 1, h2.grpc_message(LIST))), "bad_answer"),  # DATA first
        (
            sends(h2.frame(h2.HEADERS, 0, 1, b"\x88"), h2.frame(h2.PING, 0, 0, bytes(8))),
            "bad_answer",
        ),
        (
            lambda conn: headers_then(conn, h2.frame(h2.DATA, 0, 1, h2.grpc_message(LIST, 1))),
            "bad_answer",
        ),
        (lambda conn: headers_then(conn, h2.frame(h2.DATA, 0, 1, b"\0\x01\0\0\x01")), "bad_answer"),
        (
            lambda conn: headers_then(
                conn, h2.frame(h2.DATA, h2.END_STREAM, 1, h2.grpc_message(LIST))
            ),
            "bad_answer",
        ),
        (lambda conn: answer(conn, b"\x0a\xff\xff\xff\xff\x0f"), "bad_answer"),  # not protobuf
    ],
    ids=[
        "trailers-only UNIMPLEMENTED",
        "trailers-only PERMISSION_DENIED",
        "trailers-only UNAVAILABLE",
        "UNAUTHENTICATED",
        "INTERNAL",
        "GOAWAY",
        "RST_STREAM REFUSED_STREAM",
        "RST_STREAM INTERNAL_ERROR",
        "an HTTP/1.1 answer",
        "closed mid-frame",
        "DATA before headers",
        "a header block interrupted",
        "compressed message",
        "a message over 16 MiB",
        "no trailers",
        "garbled protobuf",
    ],
)
def test_a_kubelet_failing_gives_its_reason(folder: Path, script: Script, reason: str) -> None:
    server, client = serve(folder, kubelet(script))
    try:
        with pytest.raises(KubeletError) as failed:
            client.read()
        assert failed.value.reason == reason, failed.value
        assert not server.errors, server.errors
    finally:
        server.close()


def pings_forever(conn: Connection) -> None:
    while True:  # busy, never answering: every PING is one more frame to read
        conn.send(h2.frame(h2.PING, 0, 0, b"12345678"))
        time.sleep(0.05)


@pytest.mark.parametrize(
    "script", [lambda conn: conn.sock.recv(1), pings_forever], ids=["silent", "pinging"]
)
def test_a_kubelet_that_never_answers_times_out_within_the_deadline(
    folder: Path, script: Script
) -> None:
    server, client = serve(folder, kubelet(script))
    try:
        started = time.monotonic()
        with pytest.raises(KubeletError) as failed:
            client.read()
        took = time.monotonic() - started
        assert failed.value.reason == "timeout"
        assert 0.5 <= took < 0.7, took  # one deadline of 0.5 s for the whole call
    finally:
        server.close()


def random_frames(rng: random.Random) -> bytes:
    """A few frames of any type, flags and stream, mostly garbage, after a real response's
    headers half of the time; then the server hangs up."""
    frames = [h2.frame(h2.SETTINGS, 0, 0)]
    if rng.random() < 0.5:
        frames.append(h2.frame(h2.HEADERS, h2.END_HEADERS, 1, bytes.fromhex("88")))  # :status 200
    for _ in range(rng.randint(1, 6)):
        payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 4, 5, 8, 9, 30])))
        kind = rng.randrange(11)
        frames.append(h2.frame(kind, rng.randrange(256), rng.choice([0, 1, 1, 3]), payload))
    return b"".join(frames)


def test_random_frames_give_an_answer_or_a_reason_never_a_crash(folder: Path) -> None:
    rng = random.Random(9113)

    def script(conn: Connection) -> None:
        conn.send(random_frames(rng))
        conn.sock.shutdown(socket.SHUT_WR)

    server, client = serve(folder, kubelet(script))
    reasons: set[str] = set()
    try:
        for _ in range(300):
            started = time.monotonic()
            try:
                client.read()
                reasons.add("ok")
            except KubeletError as err:
                reasons.add(err.reason)
            assert time.monotonic() - started < 0.7
    finally:
        server.close()
    assert not server.errors, server.errors
    assert {"refused", "bad_answer"} <= reasons <= {"ok", "refused", "bad_answer", "timeout"}
