"""YAML configuration -> frozen dataclasses. Strict: every problem is reported at once.

Each problem is one line naming its YAML path and a hint, for example
`collectors.gpu.interval: must be a positive duration like "5s", got "-5s"`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG_PATH = Path("/etc/suanli/agent.yaml")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
BACKENDS = ("nvml", "fake")

_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class GpuCollectorConfig:
    enabled: bool = True
    detail: bool = False
    xid_events: bool = True
    gpm: bool = True
    xid_window: float = 3600.0
    critical_xids: tuple[int, ...] = ()  # empty: the XID catalogue decides
    expected_gpus: int = 0  # 0: as many as the PCI bus shows
    sysfs: str = "/sys"


@dataclass(frozen=True)
class KmsgCollectorConfig:
    enabled: bool = True
    path: str = "/dev/kmsg"
    state_file: str = "/var/lib/suanli-agent/kmsg-cursor.json"


@dataclass(frozen=True)
class InfinibandCollectorConfig:
    enabled: bool = True
    sysfs: str = "/sys"
    detail: bool = False


@dataclass(frozen=True)
class HostCollectorConfig:
    enabled: bool = True
    procfs: str = "/proc"


@dataclass(frozen=True)
class PowerCollectorConfig:
    enabled: bool = True
    sysfs: str = "/sys"


@dataclass(frozen=True)
class JobsCollectorConfig:
    enabled: bool = True
    procfs: str = "/proc"
    host_root: str = "/"
    hpc_job_mapping_dir: str = ""
    retention: float = 900.0
    per_process: bool = False
    per_process_limit: int = 20


@dataclass(frozen=True)
class CollectorsConfig:
    gpu: GpuCollectorConfig = field(default_factory=GpuCollectorConfig)
    host: HostCollectorConfig = field(default_factory=HostCollectorConfig)
    power: PowerCollectorConfig = field(default_factory=PowerCollectorConfig)
    jobs: JobsCollectorConfig = field(default_factory=JobsCollectorConfig)
    kmsg: KmsgCollectorConfig = field(default_factory=KmsgCollectorConfig)
    infiniband: InfinibandCollectorConfig = field(default_factory=InfinibandCollectorConfig)


@dataclass(frozen=True)
class TopologyConfig:
    cluster: str = ""
    hall: str = ""
    rack: str = ""


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True)
class ExpositionConfig:
    dcgm_compat: bool = False  # also export dcgm-exporter's names (docs/dcgm-compat.md)


@dataclass(frozen=True)
class Config:
    listen_address: str = ":9445"
    interval: float = 5.0
    backend: str = "nvml"
    fake_scenario: str = "h100-8"
    log: LogConfig = field(default_factory=LogConfig)
    topology: TopologyConfig = field(default_factory=TopologyConfig)
    collectors: CollectorsConfig = field(default_factory=CollectorsConfig)
    exposition: ExpositionConfig = field(default_factory=ExpositionConfig)


def parse_duration(text: object) -> float:
    """`"5s"`, `"500ms"`, `"1m30s"` -> seconds. Raises ValueError with a hint."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f'must be a duration like "5s" or "500ms", got {text!r}')
    cleaned = text.strip()
    if not _DURATION_RE.match(cleaned):
        raise ValueError(f'must be a positive duration like "5s" or "500ms", got "{text}"')
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART_RE.findall(cleaned))
    if seconds <= 0:
        raise ValueError(f'must be a positive duration like "5s", got "{text}"')
    return seconds


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


Check = Callable[[Any], Any]


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value


def _gpu_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1024:
        raise ValueError(
            f"must be a whole number of GPUs from 0 (the PCI bus decides) to 1024, got {value!r}"
        )
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10_000:
        raise ValueError(f"must be a whole number from 1 to 10000, got {value!r}")
    return value


def _xid_list(value: Any) -> tuple[int, ...]:
    """XID codes; an empty list means "those NVIDIA's XID catalogue says need an operator"."""
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1000 for v in value
    ):
        raise ValueError(f"must be a list of XID codes like [48, 79, 94], got {value!r}")
    return tuple(value)


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check


def _listen(value: Any) -> str:
    parse_listen_address(value)
    return str(value)


_CHECKS: dict[str, Check] = {
    "listen_address": _listen,
    "interval": parse_duration,
    "backend": _one_of(BACKENDS),
    "fake_scenario": _string,
    "log.level": _one_of(LOG_LEVELS),
    "log.format": _one_of(LOG_FORMATS),
    "topology.cluster": _string,
    "topology.hall": _string,
    "topology.rack": _string,
    "collectors.gpu.enabled": _bool,
    "collectors.gpu.detail": _bool,
    "collectors.gpu.xid_events": _bool,
    "collectors.gpu.gpm": _bool,
    "collectors.gpu.xid_window": parse_duration,
    "collectors.gpu.critical_xids": _xid_list,
    "collectors.gpu.expected_gpus": _gpu_count,
    "collectors.gpu.sysfs": _string,
    "collectors.kmsg.enabled": _bool,
    "collectors.kmsg.path": _string,
    "collectors.kmsg.state_file": _string,
    "collectors.infiniband.enabled": _bool,
    "collectors.infiniband.sysfs": _string,
    "collectors.infiniband.detail": _bool,
    "collectors.host.enabled": _bool,
    "collectors.host.procfs": _string,
    "collectors.jobs.enabled": _bool,
    "collectors.jobs.procfs": _string,
    "collectors.jobs.host_root": _string,
    "collectors.jobs.hpc_job_mapping_dir": _string,
    "collectors.jobs.retention": parse_duration,
    "collectors.jobs.per_process": _bool,
    "collectors.jobs.per_process_limit": _positive_int,
    "collectors.power.enabled": _bool,
    "collectors.power.sysfs": _string,
    "exposition.dcgm_compat": _bool,
}


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
            values[key] = _CHECKS[where](raw)
        except ValueError as err:
            problems.append(f"{where}: {err}")
    return cls(**values)


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
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: not valid YAML: {_yaml_problem(err)}"]) from None
    if data is None:
        return Config()
    if not isinstance(data, Mapping):
        raise ConfigError([f"{path}: the top level must be a mapping of keys, got {data!r}"])
    return from_mapping(data, str(path))


def _yaml_problem(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def with_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Apply dotted-path overrides (from flags), validated like the file. Raises ConfigError."""
    problems: list[str] = []
    for dotted, raw in overrides.items():
        try:
            value = _CHECKS[dotted](raw)
        except ValueError as err:
            flag = "--" + dotted.replace(".", "-").replace("_", "-")
            problems.append(f"{flag}: {err}")
            continue
        config = _replace_path(config, dotted.split("."), value)
    if problems:
        raise ConfigError(problems)
    return config


def _replace_path(obj: Any, parts: list[str], value: Any) -> Any:
    if len(parts) == 1:
        return dataclasses.replace(obj, **{parts[0]: value})
    child = getattr(obj, parts[0])
    return dataclasses.replace(obj, **{parts[0]: _replace_path(child, parts[1:], value)})
