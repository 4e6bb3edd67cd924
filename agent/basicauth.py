"""HTTP basic auth against bcrypt hashes, as exporter-toolkit's `basic_auth_users` does it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping

import bcrypt

_CACHE_LIMIT = 1024


class BasicAuth:
    """Checks `Authorization: Basic` headers against bcrypt hashes; remembers successes.

    A bcrypt check costs tens of milliseconds by design, so a verified (user, password) is kept,
    keyed by an HMAC under a per-process random key (never the password itself). Unknown users
    are checked against a dummy hash of the highest cost among the configured users, so that
    timing does not tell which users exist. Failures are throttled by the caller
    (agent.auth_throttle); `verify` may run in a worker thread.
    """

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()
        cost = max((_cost(hashed) for hashed in self._users.values()), default=10)
        self._dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost))

    def check(self, header: str | None) -> bool:
        """Cached, or verified now (a bcrypt check)."""
        return self.cached(header) or self.verify(header)

    def cached(self, header: str | None) -> bool:
        """Whether these credentials were verified before: no bcrypt check, microseconds."""
        credentials = parse_basic(header)
        return credentials is not None and self._digest(*credentials) in self._verified

    def _digest(self, user: str, password: str) -> bytes:
        return hmac.new(self._key, _joined(user, password), hashlib.sha256).digest()

    def verify(self, header: str | None) -> bool:
        """A bcrypt check (tens of milliseconds), remembered when it succeeds."""
        credentials = parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        digest = self._digest(user, password)
        hashed = self._users.get(user)
        ok = _bcrypt_ok(password, hashed or self._dummy) and hashed is not None
        if ok:
            with self._lock:
                if len(self._verified) >= _CACHE_LIMIT:
                    self._verified.clear()
                self._verified.add(digest)
        return ok


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """`Basic base64(user:password)` -> (user, password), or None when it is not that."""
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def _cost(hashed: bytes) -> int:
    """The cost of a `$2b$10$...` hash (agent.webconfig checked its shape)."""
    return int(hashed.split(b"$")[2])


def _joined(user: str, password: str) -> bytes:
    raw_user = user.encode()
    return len(raw_user).to_bytes(4, "big") + raw_user + password.encode()


def _bcrypt_ok(password: str, hashed: bytes) -> bool:
    try:
        return bool(bcrypt.checkpw(password.encode(), hashed))
    except ValueError:  # a password over bcrypt's 72 bytes
        return False
