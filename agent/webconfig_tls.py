"""`tls_server_config` of a `--web-config` file: its keys, their checks and the rules
exporter-toolkit applies to their combinations (agent.webconfig reads the rest of the file).

ssl is imported (agent.tls) only when a TLS section is present.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLIENT_AUTH_TYPES = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")
CURVES = ("CurveP256", "CurveP384", "CurveP521", "X25519", "X25519MLKEM768")


@dataclass(frozen=True)
class TLSSettings:
    cert_file: str | None = None
    key_file: str | None = None
    cert: str | None = None
    key: str | None = None
    client_ca_file: str | None = None
    client_ca: str | None = None
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: tuple[str, ...] = ()
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[str, ...] = ()


Check = Callable[[Any], Any]


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _one_of(choices: tuple[str, ...] | list[str]) -> Check:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check


def _list_of(item: Check) -> Check:
    def check(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ValueError(f"must be a list, got {value!r}")
        return tuple(item(v) for v in value)

    return check


def _file(base: Path) -> Check:
    def check(value: Any) -> str:
        path = base / _string(value)
        try:
            path.read_bytes()
        except OSError as err:
            raise ValueError(f'cannot read "{path}": {err.strerror or err}') from None
        return str(path)

    return check


def _tls_checks(base: Path) -> dict[str, Check]:
    from agent.tls import CIPHER_SUITES

    return {
        "cert_file": _file(base),
        "key_file": _file(base),
        "cert": _string,
        "key": _string,
        "client_ca_file": _file(base),
        "client_ca": _string,
        "client_auth_type": _one_of(CLIENT_AUTH_TYPES),
        "client_allowed_sans": _list_of(_string),
        "min_version": _one_of(TLS_VERSIONS),
        "max_version": _one_of(TLS_VERSIONS),
        "cipher_suites": _list_of(_one_of(list(CIPHER_SUITES))),
        "prefer_server_cipher_suites": _bool,
        "curve_preferences": _list_of(_one_of(CURVES)),
    }


def parse_tls(raw: dict[str, Any], base: Path, problems: list[str]) -> TLSSettings | None:
    checks = _tls_checks(base)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"tls_server_config.{key}"
        if key not in checks:
            problems.append(f"{where}: unknown key; known keys: {', '.join(checks)}")
            continue
        try:
            values[key] = checks[key](value)
        except ValueError as err:
            problems.append(f"{where}: {err}")
    if len(values) < len(raw):
        return None  # the rules below would only repeat what is wrong already
    settings = TLSSettings(**values)
    broken = [f"tls_server_config.{p}" for p in _tls_rules(settings)]
    problems.extend(broken)
    return None if broken else settings


def _tls_rules(s: TLSSettings) -> list[str]:
    """Combinations exporter-toolkit rejects, and what Python's ssl cannot do."""
    found = []
    for name in ("cert", "key", "client_ca"):
        if getattr(s, name) and getattr(s, f"{name}_file"):
            found.append(f"{name}: give either {name} or {name}_file, not both")
    for name in ("cert", "key"):
        if not getattr(s, name) and not getattr(s, f"{name}_file"):
            found.append(f"{name}_file: required to serve TLS")
    has_ca = bool(s.client_ca_file or s.client_ca)
    if s.client_auth_type == "RequireAnyClientCert":
        found.append(
            "client_auth_type: RequireAnyClientCert (a certificate that is never verified) is "
            "not supported; use RequireAndVerifyClientCert with client_ca_file"
        )
    elif s.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        if not has_ca:
            found.append(f"client_ca_file: required with client_auth_type {s.client_auth_type}")
    elif has_ca:
        found.append(
            f"client_auth_type: {s.client_auth_type} ignores client_ca_file; "
            "use RequireAndVerifyClientCert"
        )
    if s.client_allowed_sans and s.client_auth_type != "RequireAndVerifyClientCert":
        found.append("client_allowed_sans: needs client_auth_type RequireAndVerifyClientCert")
    if s.min_version in ("TLS10", "TLS11"):
        found.append(f"min_version: {s.min_version} is below TLS12 and refused: use TLS12 or TLS13")
    elif TLS_VERSIONS.index(s.min_version) > TLS_VERSIONS.index(s.max_version):
        found.append(f"min_version: {s.min_version} is above max_version {s.max_version}")
    return found


def tls_context(tls: TLSSettings, problems: list[str]) -> Any:
    from agent.tls import TLSSetupError, server_context

    try:
        return server_context(tls)
    except TLSSetupError as err:
        problems.append(f"tls_server_config.{err.key}: {err}")
        return None


def tls_warnings(tls: TLSSettings | None) -> tuple[str, ...]:
    if tls is None or not tls.curve_preferences:
        return ()
    return (
        "web config: tls_server_config.curve_preferences is ignored: "
        "Python's ssl module uses OpenSSL's default curves",
    )
