"""TLS serving for `--web-config`: the server context, and non-blocking handshake steps.

Imported only when a web configuration enables TLS: loading OpenSSL costs about 4 MiB of
resident memory. The HTTP loop (agent.http_loop) drives each handshake a step at a time as its
socket becomes ready, under the connection's deadline, so a client that connects and sends
nothing, or drips its ClientHello a byte at a time, holds one socket and no thread.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# Go's cipher suite names (what exporter-toolkit accepts) -> OpenSSL's; None: a TLS 1.3 suite,
# which neither Go nor Python lets a server restrict.
CIPHER_SUITES: dict[str, str | None] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}

VERIFY_MODES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,  # nothing here reads an unverified certificate
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


class TLSSetupError(ValueError):
    """`key` (a tls_server_config key) cannot be used: str(err) says why."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(why)
        self.key = key


def server_context(settings: Any) -> ssl.SSLContext:
    """An SSLContext for a `TLSSettings` (agent.webconfig). Raises TLSSetupError."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = VERSIONS[settings.min_version]
    context.maximum_version = VERSIONS[settings.max_version]
    _load_keys(context, settings)
    context.verify_mode = VERIFY_MODES[settings.client_auth_type]
    if not settings.prefer_server_cipher_suites:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    names = [CIPHER_SUITES[s] for s in settings.cipher_suites]
    if any(names):
        try:
            context.set_ciphers(":".join(n for n in names if n))
        except ssl.SSLError:
            why = "none of them is available in this OpenSSL"
            raise TLSSetupError("cipher_suites", why) from None
    return context


def _load_keys(context: ssl.SSLContext, settings: Any) -> None:
    cert_pem, key_pem = (
        _pem(settings.cert_file, settings.cert),
        _pem(settings.key_file, settings.key),
    )
    with cert_pem as cert, key_pem as key:
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, ValueError) as err:
            why = f"not a PEM key that matches the certificate ({err})"
            raise TLSSetupError("key_file", why) from None
    if settings.client_ca_file or settings.client_ca:
        try:
            context.load_verify_locations(cafile=settings.client_ca_file, cadata=settings.client_ca)
        except (ssl.SSLError, ValueError) as err:
            why = f"no PEM CA certificate in it ({err})"
            raise TLSSetupError("client_ca_file", why) from None


@contextmanager
def _pem(path: str | None, inline: str | None) -> Iterator[str]:
    """A path OpenSSL can read: the file, or inline PEM text in an anonymous memory file."""
    if path is not None:
        yield path
        return
    fd = os.memfd_create("suanli-pem", os.MFD_CLOEXEC)
    try:
        os.write(fd, (inline or "").encode())
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


AGAIN = (ssl.SSLWantReadError, ssl.SSLWantWriteError)  # a non-blocking call to retry later


def wrap(context: ssl.SSLContext, sock: socket.socket) -> ssl.SSLSocket:
    """The server side of TLS over an accepted non-blocking socket; the handshake is not started.
    Raises OSError."""
    return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)


def handshake_step(conn: ssl.SSLSocket, allowed_sans: Iterable[str] = ()) -> str | None:
    """One non-blocking step of the handshake: "read" or "write" (what it waits for), or None
    once it is done and the client's certificate is allowed. Raises OSError (ssl.SSLError)."""
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        return "read"
    except ssl.SSLWantWriteError:
        return "write"
    allowed = list(allowed_sans)
    if allowed and not san_allowed(conn.getpeercert(), allowed):
        raise ssl.SSLError("no subject alternative name of the client certificate is allowed")
    return None


def san_allowed(cert: Any, allowed: list[str]) -> bool:
    """Whether a DNS, IP, email or URI subject alternative name of `cert` is in `allowed`."""
    wanted = {_normal(name) for name in allowed}
    names = (cert or {}).get("subjectAltName", ())
    return any(_normal(value) in wanted for _, value in names)


def _normal(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name.strip()))
    except ValueError:
        return name
