"""HTTP/1.x request heads, parsed from bytes already received; and response heads, as bytes.

Only what a metrics endpoint needs: GET and HEAD without a body, HTTP/1.0 and 1.1, keep-alive.
Anything else is an `HttpError` carrying the status to answer with before closing.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formatdate

MAX_HEAD_BYTES = 16 * 1024  # request line and headers: a scraper sends a few hundred
MAX_HEADERS = 64
METHODS = (b"GET", b"HEAD")
KNOWN_METHODS = (b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"CONNECT")
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class HttpError(Exception):
    """The request cannot be served: answer `status` (a `reason` for the metric) and close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Request:
    method: bytes
    path: str
    version: bytes
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    size: int  # bytes of the head, blank line included

    @property
    def head_only(self) -> bool:
        return self.method == b"HEAD"

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == b"HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


def parse_head(buffer: bytes | bytearray) -> Request | None:
    """The first request in `buffer`, or None until its blank line arrives. Raises HttpError."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD_BYTES:
            raise HttpError(431, "header_too_large")
        return None
    if end + 4 > MAX_HEAD_BYTES:
        raise HttpError(431, "header_too_large")
    lines = bytes(buffer[:end]).split(b"\r\n")
    method, path, version = _request_line(lines[0])
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(431, "header_too_large")
    headers = _headers(lines[1:])
    if headers.get("transfer-encoding") or headers.get("content-length", "0").strip() != "0":
        raise HttpError(400, "bad_request")  # GET and HEAD carry no body here
    return Request(method, path, version, headers, end + 4)


def _request_line(line: bytes) -> tuple[bytes, str, bytes]:
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[1].startswith(b"/"):
        raise HttpError(400, "bad_request")
    method, target, version = parts
    if version not in (b"HTTP/1.0", b"HTTP/1.1"):
        if version.startswith(b"HTTP/") and method in METHODS:
            raise HttpError(505, "bad_request")
        raise HttpError(400, "bad_request")
    if method not in METHODS:
        raise HttpError(405 if method in KNOWN_METHODS else 400, "method")
    try:
        path = target.split(b"?", 1)[0].decode("ascii")
    except UnicodeDecodeError:
        raise HttpError(400, "bad_request") from None
    return method, path, version


def _headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name:
            raise HttpError(400, "bad_request")
        headers[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
    return headers


def response_head(
    status: int, length: int, headers: list[tuple[str, str]], keep_alive: bool
) -> bytes:
    """The status line and headers of a response with a `length`-byte body."""
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Length: {length}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
