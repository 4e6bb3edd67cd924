"""YAML configuration -> frozen dataclasses. Strict: every problem is reported at once.

Each problem is one line naming its YAML path and a hint, for example
`collectors.gpu.interval: must be a positive duration like "5s", got "-5s"`.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent import safe_yaml
from agent.collectors.registry import CollectorsConfig
from agent.options import (
    Check,
    boolean,
    check_of,
    one_of,
    option,
    parse_duration,
    string,
)
from agent.options import Topology as TopologyConfig

__all__ = [
    "BACKENDS",
    "DEFAULT_CONFIG_PATH",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "CollectorsConfig",
    "Config",
    "ConfigError",
    "TopologyConfig",
    "from_mapping",
    "load",
    "parse_duration",
    "parse_listen_address",
    "with_overrides",
]

DEFAULT_CONFIG_PATH = Path("/etc/suanli/agent.yaml")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
BACKENDS = ("nvml", "fake")


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one line per problem."""

    MAX_CHARS = 400  # a problem quoting a huge value is cut: one readable line each

    def __init__(self, problems: list[str]) -> None:
        cut = self.MAX_CHARS
        problems = [p if len(p) <= cut else p[: cut - 3] + "..." for p in problems]
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class LogConfig:
    level: str = option("info", one_of(LOG_LEVELS))
    format: str = option("text", one_of(LOG_FORMATS))


@dataclass(frozen=True)
class ExpositionConfig:
    # also export dcgm-exporter's names (docs/dcgm-compat.md)
    dcgm_compat: bool = option(False, boolean)


MIN_INTERVAL_S, MAX_INTERVAL_S = 0.1, 3600.0


def interval(value: Any) -> float:
    """The sampling interval: a duration from 100ms to 1h."""
    seconds = parse_duration(value)
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise ValueError(f'must be from 100ms to 1h, got "{value}"')
    return seconds


def _listen(value: Any) -> str:
    parse_listen_address(value)
    return str(value)


@dataclass(frozen=True)
class Config:
    listen_address: str = option(":9445", _listen)
    interval: float = option(5.0, interval)
    backend: str = option("nvml", one_of(BACKENDS))
    fake_scenario: str = option("h100-8", string)
    log: LogConfig = field(default_factory=LogConfig)
    topology: TopologyConfig = field(default_factory=TopologyConfig)
    collectors: CollectorsConfig = field(default_factory=CollectorsConfig)
    exposition: ExpositionConfig = field(default_factory=ExpositionConfig)


def parse_listen_address(text: object) -> tuple[str, int]:
    """`":9445"` -> ("", 9445); `"[::1]:9445"` -> ("::1", 9445). Raises ValueError."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f'must be HOST:PORT like "127.0.0.1:9445" or ":9445", got {text!r}')
    host, _, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f'an IPv6 host needs brackets, like "[::1]:9445", got "{text}"')
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f'port must be a number from 1 to 65535, got "{port_text}"')
    return host, int(port_text)


def _build(cls: type[Any], data: Mapping[str, Any], path: str, problems: list[str]) -> Any:
    """Check `data` against dataclass `cls`, collecting problems; return an instance."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, raw in data.items():
        where = f"{path}{key}"
        if key not in fields:
            problems.append(_unknown_key(where, str(key), list(fields)))
            continue
        nested = _nested_type(cls, key)
        if nested is not None:
            if not isinstance(raw, Mapping):
                problems.append(f"{where}: must be a mapping of keys, got {raw!r}")
                continue
            values[key] = _build(nested, raw, f"{where}.", problems)
            continue
        try:
            values[key] = _check(fields[key])(raw)
        except ValueError as err:
            problems.append(f"{where}: {err}")
    return cls(**values)


def _check(found: dataclasses.Field[Any]) -> Check:
    check = check_of(found)
    if check is None:
        raise TypeError(f"option {found.name} declares no check")
    return check


def _nested_type(cls: type[Any], key: str) -> type[Any] | None:
    default = next(f for f in dataclasses.fields(cls) if f.name == key).default_factory
    if default is dataclasses.MISSING:
        return None
    made = default()
    return type(made) if dataclasses.is_dataclass(made) else None


def _unknown_key(where: str, key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(known)}"
    return f"{where}: unknown key; {hint}"


def option_paths(cls: type[Any] = Config, prefix: str = "") -> list[str]:
    """Every configuration key, as a dotted path (`collectors.gpu.detail`)."""
    paths: list[str] = []
    for found in dataclasses.fields(cls):
        nested = _nested_type(cls, found.name)
        if nested is None:
            paths.append(prefix + found.name)
        else:
            paths += option_paths(nested, f"{prefix}{found.name}.")
    return paths


def from_mapping(data: Mapping[str, Any], source: str = "") -> Config:
    """Validate a parsed YAML mapping. Raises ConfigError listing every problem."""
    problems: list[str] = []
    config = _build(Config, data, "", problems)
    if problems:
        raise ConfigError([f"{source}: {p}" if source else p for p in problems])
    return config  # type: ignore[no-any-return]


def load(path: Path) -> Config:
    """Read and validate a YAML file. Raises ConfigError with one line per problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ConfigError([f"{path}: cannot read: {reason}"]) from None
    try:
        data = safe_yaml.load(text)
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: not valid YAML: {safe_yaml.problem(err)}"]) from None
    if data is None:
        return Config()
    if not isinstance(data, Mapping):
        raise ConfigError([f"{path}: the top level must be a mapping of keys, got {data!r}"])
    return from_mapping(data, str(path))


def with_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Apply dotted-path overrides (from flags), validated like the file. Raises ConfigError."""
    problems: list[str] = []
    for dotted, raw in overrides.items():
        try:
            value = _check(_field_at(Config, dotted.split(".")))(raw)
        except ValueError as err:
            flag = "--" + dotted.replace(".", "-").replace("_", "-")
            problems.append(f"{flag}: {err}")
            continue
        config = _replace_path(config, dotted.split("."), value)
    if problems:
        raise ConfigError(problems)
    return config


def _field_at(cls: type[Any], path: list[str]) -> dataclasses.Field[Any]:
    found = next(f for f in dataclasses.fields(cls) if f.name == path[0])
    if len(path) == 1:
        return found
    nested = _nested_type(cls, path[0])
    assert nested is not None, path
    return _field_at(nested, path[1:])


def _replace_path(obj: Any, parts: list[str], value: Any) -> Any:
    if len(parts) == 1:
        return dataclasses.replace(obj, **{parts[0]: value})
    child = getattr(obj, parts[0])
    return dataclasses.replace(obj, **{parts[0]: _replace_path(child, parts[1:], value)})
