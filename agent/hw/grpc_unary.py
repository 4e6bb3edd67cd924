"""A gRPC unary call over HTTP/2 in cleartext with prior knowledge (RFC 9113 section 3.3), on
a unix socket, in the standard library alone: what the kubelet's PodResources API needs.

Each call is one connection, one stream (id 1) and ONE deadline: connecting, sending and every
read wait only for the time left, so a hung server never holds the caller longer. This side
advertises a 32 MiB window for the stream and raises the connection's to match, so an answer up
to the 16 MiB message limit flows without further WINDOW_UPDATEs; it accepts frames up to
16 KiB (the default it never raises), acknowledges the server's SETTINGS and PINGs, and sends
only frames far below any peer's maximum frame size. `cancel()` (another thread) ends a call in
flight at once. Failures are `RpcError`s named as a gRPC library names them: the deadline is
DEADLINE_EXCEEDED, a refused or closed connection or a GOAWAY before the stream UNAVAILABLE, a
broken protocol INTERNAL, an RST_STREAM by its error code (section 8.1 of grpc's
PROTOCOL-HTTP2: REFUSED_STREAM is UNAVAILABLE).
"""

from __future__ import annotations

import contextlib
import socket
import threading

from agent.hw import h2_frames as h2
from agent.hw.grpc_response import RpcError, UnaryResponse
from agent.hw.hpack import MAX_HEADER_LIST_SIZE, Decoder, HpackError, encode_plain

MAX_MESSAGE = 16 * 1024 * 1024
_WINDOW = 32 * 1024 * 1024
_DEFAULT_WINDOW = 65535
_MAX_HEADER_BLOCK = 64 * 1024
_STREAM = 1
_RST_STATUS = {
    h2.REFUSED_STREAM: "UNAVAILABLE",
    0x8: "CANCELLED",  # CANCEL
    0xB: "RESOURCE_EXHAUSTED",  # ENHANCE_YOUR_CALM
    h2.INADEQUATE_SECURITY: "PERMISSION_DENIED",
}


class UnaryClient:
    """Unary calls to the gRPC server on `socket_path`."""

    def __init__(self, socket_path: str, max_message: int = MAX_MESSAGE) -> None:
        self.socket_path = socket_path
        self.max_message = max_message
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._cancelled = False
        self._closed = False

    def call(self, method: str, request: bytes, timeout_s: float) -> bytes:
        """The response message of `method` (`/package.Service/Method`). Raises `RpcError`."""
        deadline = h2.Deadline(timeout_s)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            self._sock, self._cancelled = sock, self._closed
        try:
            if self._cancelled:
                raise RpcError("CANCELLED", "the client is closed")
            sock.settimeout(deadline.left())
            sock.connect(self.socket_path)
            if self._cancelled:
                raise RpcError("CANCELLED", "cancelled while connecting")
            return _exchange(h2.Wire(sock, deadline), method, request, self.max_message)
        except TimeoutError:
            raise RpcError("DEADLINE_EXCEEDED", f"no answer within {timeout_s:g} s") from None
        except PermissionError as err:
            raise RpcError("PERMISSION_DENIED", str(err)) from None
        except (OSError, h2.Closed) as err:
            status = "CANCELLED" if self._cancelled else "UNAVAILABLE"
            raise RpcError(status, str(err) or type(err).__name__) from None
        except (h2.ProtocolError, HpackError) as err:
            raise RpcError("INTERNAL", str(err)) from None
        finally:
            with self._lock:
                self._sock = None
            sock.close()

    def close(self) -> None:
        """End the call in flight now and refuse every later one (CANCELLED)."""
        with self._lock:
            self._closed = True
        self.cancel()

    def cancel(self) -> None:
        """End the call in flight now (its caller gets CANCELLED)."""
        with self._lock:
            if self._sock is not None:
                self._cancelled = True
                # not connected yet: `call` sees the flag once it is
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)


def _exchange(wire: h2.Wire, method: str, request: bytes, max_message: int) -> bytes:
    wire.send(_request(method, request, wire.deadline.left()))
    decoder = Decoder()
    response = UnaryResponse(max_message)
    while not response.ended:
        got = wire.read_frame()
        if got.stream == 0:
            _connection_frame(wire, got)
        elif got.type == h2.HEADERS:
            headers = decoder.decode(_header_block(wire, got))  # every block: the table's order
            if got.stream == _STREAM:
                response.on_headers(headers, bool(got.flags & h2.END_STREAM))
        elif got.type in (h2.PUSH_PROMISE, h2.CONTINUATION):
            raise h2.ProtocolError(f"frame type {got.type} unasked for")
        elif got.stream != _STREAM:
            continue
        elif got.type == h2.DATA:
            response.on_data(h2.unpadded(got), bool(got.flags & h2.END_STREAM))
        elif got.type == h2.RST_STREAM:
            code = h2.error_code(got.payload)
            raise RpcError(_RST_STATUS.get(code, "INTERNAL"), f"RST_STREAM, error code {code}")
    return response.message()


def _request(method: str, request: bytes, left_s: float) -> bytes:
    if len(request) > h2.DEFAULT_MAX_FRAME_SIZE - 5:
        raise ValueError("requests go in one DATA frame")  # the kubelet's are empty
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", method),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("grpc-timeout", f"{max(1, int(left_s * 1000))}m"),
    ]
    message = b"\0" + len(request).to_bytes(4, "big") + request
    return b"".join(
        (
            h2.PREFACE,
            h2.settings(
                {
                    h2.SETTINGS_ENABLE_PUSH: 0,
                    h2.SETTINGS_INITIAL_WINDOW_SIZE: _WINDOW,
                    h2.SETTINGS_MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_SIZE,
                }
            ),
            h2.window_update(0, _WINDOW - _DEFAULT_WINDOW),
            h2.frame(h2.HEADERS, h2.END_HEADERS, _STREAM, encode_plain(headers)),
            h2.frame(h2.DATA, h2.END_STREAM, _STREAM, message),
        )
    )


def _connection_frame(wire: h2.Wire, got: h2.Frame) -> None:
    """SETTINGS, PING, GOAWAY and WINDOW_UPDATE on stream 0."""
    if got.type == h2.SETTINGS:
        if got.flags & h2.ACK:
            if got.payload:
                raise h2.ProtocolError("SETTINGS ACK with a payload (FRAME_SIZE_ERROR)")
        else:
            h2.parse_settings(got.payload)  # nothing there changes what this side sends
            wire.send(h2.frame(h2.SETTINGS, h2.ACK, 0))
    elif got.type == h2.PING:
        if len(got.payload) != 8:
            raise h2.ProtocolError("PING not of 8 bytes (FRAME_SIZE_ERROR)")
        if not got.flags & h2.ACK:
            wire.send(h2.frame(h2.PING, h2.ACK, 0, got.payload))
    elif got.type == h2.GOAWAY:
        code = h2.error_code(got.payload, 4)
        if h2.goaway_last_stream(got.payload) < _STREAM:  # the call was never taken up
            raise RpcError("UNAVAILABLE", f"GOAWAY, error code {code}")
    elif got.type == h2.WINDOW_UPDATE:
        if len(got.payload) != 4:
            raise h2.ProtocolError("WINDOW_UPDATE not of 4 bytes (FRAME_SIZE_ERROR)")
    elif got.type in (h2.DATA, h2.HEADERS, h2.CONTINUATION, h2.RST_STREAM):
        raise h2.ProtocolError(f"frame type {got.type} on stream 0")


def _header_block(wire: h2.Wire, first: h2.Frame) -> bytes:
    """A HEADERS frame's block with the CONTINUATION frames that follow it."""
    block = h2.unpadded(first)
    flags = first.flags
    while not flags & h2.END_HEADERS:
        more = wire.read_frame()
        if more.type != h2.CONTINUATION or more.stream != first.stream:
            raise h2.ProtocolError("a header block interrupted (PROTOCOL_ERROR)")
        block += more.payload
        if len(block) > _MAX_HEADER_BLOCK:
            raise h2.ProtocolError("a header block over 64 KiB")
        flags = more.flags
    return block
