"""A gRPC unary response as it comes in on its HTTP/2 stream (the gRPC "PROTOCOL-HTTP2"
document): Response-Headers, one Length-Prefixed-Message in DATA frames, Trailers; or
Trailers-Only, one HEADERS frame ending the stream with the status.

Every failure is an `RpcError` named by its gRPC status code, as a gRPC library reports it.
"""

from __future__ import annotations

from urllib.parse import unquote

from agent.hw.hpack import Header

# the codes of grpc/status.h (and Go's codes package), by number
STATUS_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
)  # fmt: skip
# "HTTP to gRPC Status Code Mapping" in grpc's doc/http-grpc-status-mapping.md
_HTTP_STATUS = {
    400: "INTERNAL",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "UNIMPLEMENTED",
    429: "UNAVAILABLE",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "UNAVAILABLE",
}
_PREFIX = 5  # compressed flag, 4-byte big-endian length


class RpcError(Exception):
    """A call that gave no message: `status` is the gRPC status code's name."""

    def __init__(self, status: str, detail: str = "") -> None:
        super().__init__(f"{status}: {detail}" if detail else status)
        self.status = status


class UnaryResponse:
    """The response on one stream, fed its header blocks and DATA payloads in order."""

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self.headers: dict[str, str] | None = None
        self.trailers: dict[str, str] | None = None
        self.ended = False
        self._body = bytearray()
        self._length = -1  # the message's length once its prefix is in

    def on_headers(self, headers: list[Header], end_stream: bool) -> None:
        fields = dict(headers)
        if self.headers is None:
            self.headers = fields
            _check_response_headers(fields, trailers_only=end_stream)
            if end_stream:  # Trailers-Only
                self.trailers = fields
        elif self.trailers is None and end_stream:
            self.trailers = fields
        else:
            raise RpcError("INTERNAL", "a header block after the trailers, or mid-stream")
        self.ended = end_stream

    def on_data(self, data: bytes, end_stream: bool) -> None:
        if self.headers is None or self.trailers is not None:
            raise RpcError("INTERNAL", "DATA before the response headers or after the trailers")
        self._body += data
        if self._length < 0 and len(self._body) >= _PREFIX:
            flag, self._length = self._body[0], int.from_bytes(self._body[1:_PREFIX], "big")
            if flag == 1:
                raise RpcError("INTERNAL", "a compressed message, never asked for")
            if flag:
                raise RpcError("INTERNAL", f"message flag {flag}")
            if self._length > self.max_message:
                raise RpcError("RESOURCE_EXHAUSTED", f"a message of {self._length} bytes")
        if self._length >= 0 and len(self._body) > _PREFIX + self._length:
            raise RpcError("INTERNAL", "more than one message for a unary call")
        self.ended = end_stream

    def message(self) -> bytes:
        """The one message of an OK status, or the status as an `RpcError`."""
        trailers = self.trailers or {}
        status = trailers.get("grpc-status")
        if status is None:
            raise RpcError("INTERNAL", "the stream ended without a grpc-status")
        code = _number(status, -1)
        if code != 0:
            name = STATUS_NAMES[code] if 0 < code < len(STATUS_NAMES) else "UNKNOWN"
            raise RpcError(name, unquote(trailers.get("grpc-message", "")))
        if self._length < 0 or len(self._body) != _PREFIX + self._length:
            raise RpcError("INTERNAL", "no whole message before the OK status")
        return bytes(self._body[_PREFIX:])


def _check_response_headers(fields: dict[str, str], trailers_only: bool) -> None:
    status = fields.get(":status", "")
    if status != "200":
        code = _number(status, 0)
        raise RpcError(_HTTP_STATUS.get(code, "UNKNOWN"), f"HTTP status {status or 'missing'}")
    content_type = fields.get("content-type", "")
    if not trailers_only and not content_type.startswith("application/grpc"):
        raise RpcError("UNKNOWN", f"content-type {content_type or 'missing'}")


def _number(text: str, otherwise: int) -> int:
    """A header's decimal number (ASCII digits only: "²" is a digit to `str.isdigit`)."""
    return int(text) if text.isascii() and text.isdigit() else otherwise
