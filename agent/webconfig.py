"""`--web-config FILE`: TLS, client certificates and basic auth, in exporter-toolkit's format.

The format node_exporter and dcgm-exporter read with `--web.config.file`: `tls_server_config`,
`http_server_config` and `basic_auth_users` (bcrypt hashes). Strict like agent.config: unknown
keys, unreadable certificate files and malformed hashes are problems, one line each naming the
YAML path. Relative file names are relative to the web config file's directory.

ssl is imported (agent.tls) only when `tls_server_config` is set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.basicauth import BasicAuth
from agent.config import ConfigError

CLIENT_AUTH_TYPES = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")
CURVES = ("CurveP256", "CurveP384", "CurveP521", "X25519", "X25519MLKEM768")
HEADER_VALUES: dict[str, tuple[str, ...] | None] = {
    "Content-Security-Policy": None,
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-Content-Type-Options": ("nosniff",),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
_BCRYPT_RE = re.compile(r"^\$2[aby]?\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")


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


@dataclass(frozen=True)
class WebConfig:
    tls: TLSSettings | None = None
    context: Any = None  # ssl.SSLContext when tls is set
    headers: tuple[tuple[str, str], ...] = ()
    users: Mapping[str, bytes] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def basic_auth(self) -> BasicAuth | None:
        return BasicAuth(self.users) if self.users else None


# --- loading ---------------------------------------------------------------------------------

Check = Callable[[Any], Any]


def load(path: Path) -> WebConfig:
    """Read and validate a web config file. Raises ConfigError with one line per problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ConfigError([f"{path}: cannot read: {reason}"]) from None
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else "syntax error"
        raise ConfigError([f"{path}: not valid YAML: {first}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError([f"{path}: the top level must be a mapping of keys, got {data!r}"])
    problems: list[str] = []
    config = _parse(data, path.resolve().parent, problems)
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return config


def _parse(data: Mapping[str, Any], base: Path, problems: list[str]) -> WebConfig:
    known = ("tls_server_config", "http_server_config", "basic_auth_users")
    for key in data:
        if key == "rate_limit":
            problems.append("rate_limit: not supported by suanli-agent; remove it")
        elif key not in known:
            problems.append(f"{key}: unknown key; known keys: {', '.join(known)}")
    tls_raw = _mapping(data, "tls_server_config", problems)
    tls = _tls(tls_raw, base, problems) if tls_raw else None
    context = _context(tls, problems) if tls is not None and not problems else None
    warnings = _warnings(tls)
    headers = _http(_mapping(data, "http_server_config", problems), problems)
    users = _users(_mapping(data, "basic_auth_users", problems), problems)
    return WebConfig(tls, context, headers, users, warnings)


def _mapping(data: Mapping[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        problems.append(f"{key}: must be a mapping of keys, got {value!r}")
        return {}
    return dict(value)


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


def _tls(raw: dict[str, Any], base: Path, problems: list[str]) -> TLSSettings | None:
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
    if TLS_VERSIONS.index(s.min_version) > TLS_VERSIONS.index(s.max_version):
        found.append(f"min_version: {s.min_version} is above max_version {s.max_version}")
    return found


def _context(tls: TLSSettings, problems: list[str]) -> Any:
    from agent.tls import TLSSetupError, server_context

    try:
        return server_context(tls)
    except TLSSetupError as err:
        problems.append(f"tls_server_config.{err.key}: {err}")
        return None


def _warnings(tls: TLSSettings | None) -> tuple[str, ...]:
    if tls is None or not tls.curve_preferences:
        return ()
    return (
        "web config: tls_server_config.curve_preferences is ignored: "
        "Python's ssl module uses OpenSSL's default curves",
    )


def _http(raw: dict[str, Any], problems: list[str]) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for key, value in raw.items():
        where = f"http_server_config.{key}"
        if key == "http2":
            if not isinstance(value, bool):
                problems.append(f"{where}: must be true or false, got {value!r}")
        elif key == "headers":
            headers.extend(_headers(value, problems))
        else:
            problems.append(f"{where}: unknown key; known keys: headers, http2")
    return tuple(headers)


def _headers(raw: Any, problems: list[str]) -> list[tuple[str, str]]:
    if not isinstance(raw, Mapping):
        problems.append(f"http_server_config.headers: must be a mapping, got {raw!r}")
        return []
    found = []
    for name, value in raw.items():
        where = f"http_server_config.headers.{name}"
        if name not in HEADER_VALUES:
            problems.append(f"{where}: not a header one may set; known: {', '.join(HEADER_VALUES)}")
        elif not isinstance(value, str) or "\n" in value or "\r" in value:
            problems.append(f"{where}: must be a one-line string, got {value!r}")
        elif value and HEADER_VALUES[name] and value.lower() not in (HEADER_VALUES[name] or ()):
            problems.append(f"{where}: must be one of {', '.join(HEADER_VALUES[name] or ())}")
        elif value:
            found.append((str(name), value))
    return found


def _users(raw: dict[str, Any], problems: list[str]) -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    for user, hashed in raw.items():
        where = f"basic_auth_users.{user}"
        if not user or ":" in user:
            problems.append(f"{where}: a user name must be non-empty and without ':'")
        elif not isinstance(hashed, str) or not _BCRYPT_RE.match(hashed):
            problems.append(
                f'{where}: must be a bcrypt hash like "$2y$10$...", '
                "made with: htpasswd -nBC 10 \"\" | tr -d ':\\n'"
            )
        else:
            users[user] = hashed.encode()
    return users
