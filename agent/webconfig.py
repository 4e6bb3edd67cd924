"""`--web-config FILE`: TLS, client certificates and basic auth, in exporter-toolkit's format.

The format node_exporter and dcgm-exporter read with `--web.config.file`: `tls_server_config`,
`http_server_config` and `basic_auth_users` (bcrypt hashes). Strict like agent.config: unknown
keys, unreadable certificate files and malformed hashes are problems, one line each naming the
YAML path. Relative file names are relative to the web config file's directory.

ssl is imported (agent.tls) only when `tls_server_config` is set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent import safe_yaml
from agent.basicauth import BasicAuth
from agent.config import ConfigError
from agent.webconfig_tls import TLSSettings, parse_tls, tls_context, tls_warnings

HEADER_VALUES: dict[str, tuple[str, ...] | None] = {
    "Content-Security-Policy": None,
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-Content-Type-Options": ("nosniff",),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
_BCRYPT_RE = re.compile(r"^\$2[aby]?\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")


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


def load(path: Path) -> WebConfig:
    """Read and validate a web config file. Raises ConfigError with one line per problem."""
    try:
        data = safe_yaml.load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ConfigError([f"{path}: cannot read: {reason}"]) from None
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: not valid YAML: {safe_yaml.problem(err)}"]) from None
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
    tls = parse_tls(tls_raw, base, problems) if tls_raw else None
    context = tls_context(tls, problems) if tls is not None and not problems else None
    warnings = tls_warnings(tls)
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
