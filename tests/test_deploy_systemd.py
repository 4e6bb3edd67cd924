"""The systemd unit, the sysusers snippet and the example configuration under deploy/.

`systemd-analyze verify` and `systemd-analyze security --offline=true` check the unit as systemd
itself reads it. Those tests skip when systemd-analyze is missing, unless
`SUANLI_REQUIRE_SYSTEMD=1` is set (as `.ci/run` does): then they fail, so CI cannot pass by
skipping them. Debian's `systemd` package provides systemd-analyze and systemd-sysusers.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from agent.config import Config, load, option_paths

RunAgent = Callable[..., "subprocess.CompletedProcess[str]"]

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "systemd" / "suanli-agent.service"
SYSUSERS = ROOT / "deploy" / "systemd" / "suanli.sysusers.conf"
EXAMPLE = ROOT / "deploy" / "config" / "agent.example.yaml"
UDEV_RULE = ROOT / "deploy" / "udev" / "90-suanli-rapl.rules"
INSTALLED_BINARY = "/opt/suanli/venv/bin/suanli-agent"
INSTALLED_CONFIG = "/etc/suanli/agent.yaml"
MAX_EXPOSURE = 2.0


def systemd_required() -> bool:
    """True when tests needing systemd's tools must fail rather than skip."""
    value = os.environ.get("SUANLI_REQUIRE_SYSTEMD", "").strip().lower()
    return value not in ("", "0", "false", "no")


def systemd_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package: systemd)"
        if systemd_required():
            pytest.fail(f"{message}, and SUANLI_REQUIRE_SYSTEMD=1 is set")
        pytest.skip(message)
    return path


def unit_settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order; repeated keys stay separate."""
    settings: list[tuple[str, str, str]] = []
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        settings.append((section, key.strip(), value.strip()))
    return settings


def values(key: str, section: str = "Service") -> list[str]:
    return [v for s, k, v in unit_settings(UNIT.read_text()) if s == section and k == key]


def value(key: str, section: str = "Service") -> str:
    found = values(key, section)
    assert len(found) == 1, f"{section}.{key} set {len(found)} times: {found}"
    return found[0]


@pytest.fixture
def installed_unit(tmp_path: Path) -> Path:
    """The unit as it would be installed, with the binary it runs present.

    systemd-analyze verify checks that ExecStart='s program exists and is executable, and this
    machine has no /opt/suanli/venv. So the unit is copied to a temporary directory with
    /opt/suanli/venv/bin/suanli-agent replaced by a real, working launcher of this checkout's agent
    (the same `python -m agent` the console script runs). Nothing else in the unit is changed.
    """
    launcher = tmp_path / "bin" / "suanli-agent"
    launcher.parent.mkdir()
    launcher.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} -m agent "$@"\n'
    )
    launcher.chmod(0o755)
    text = UNIT.read_text()
    assert text.count(INSTALLED_BINARY) == 2  # ExecStartPre and ExecStart, nothing else
    unit = tmp_path / "unit" / UNIT.name
    unit.parent.mkdir()
    unit.write_text(text.replace(INSTALLED_BINARY, str(launcher)))
    return unit


# --- systemd's own checks ------------------------------------------------------------------


def test_systemd_analyze_verify_accepts_the_unit(installed_unit: Path) -> None:
    analyze = systemd_tool("systemd-analyze")
    result = subprocess.run(
        [analyze, "verify", str(installed_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=installed_unit.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", result.stderr


def test_security_exposure_is_at_most_2(installed_unit: Path) -> None:
    analyze = systemd_tool("systemd-analyze")
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(installed_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=installed_unit.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, result.stdout


def _colon_table(path: Path) -> dict[str, list[str]]:
    """/etc/passwd-style lines by their first field."""
    return {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines()}


def test_sysusers_snippet_creates_the_suanli_user_and_group(tmp_path: Path) -> None:
    sysusers = systemd_tool("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    result = subprocess.run(
        [sysusers, f"--root={tmp_path}", str(SYSUSERS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passwd = _colon_table(tmp_path / "etc" / "passwd")
    groups = _colon_table(tmp_path / "etc" / "group")
    assert "suanli" in groups
    user = passwd["suanli"]
    assert user[2] != "0" and user[3] == groups["suanli"][2]  # a system uid, primary group suanli
    assert user[6] == "/usr/sbin/nologin"


# --- what the unit promises ----------------------------------------------------------------


def test_the_unit_runs_the_agent_under_sd_notify_with_a_watchdog() -> None:
    assert value("Type") == "notify"
    assert value("NotifyAccess") == "main"
    watchdog = value("WatchdogSec")
    seconds = float(watchdog.removesuffix("s"))
    # The agent pings every WatchdogSec/2 while sampling progresses; a cycle can take up to one
    # interval (the collectors' deadline), so the watchdog must allow several default intervals.
    assert seconds >= 4 * Config().interval
    assert value("Restart") == "on-failure"


def test_exec_lines_use_the_venv_binary_the_config_and_only_known_flags() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "agent", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=ROOT,
    ).stdout
    known = set(re.findall(r"--[a-z][a-z-]*", help_text))
    pre, start = value("ExecStartPre"), value("ExecStart")
    assert shlex.split(pre) == [INSTALLED_BINARY, "--check-config", "--config", INSTALLED_CONFIG]
    assert shlex.split(start) == [INSTALLED_BINARY, "--config", INSTALLED_CONFIG]
    for line in (pre, start):
        flags = [word for word in shlex.split(line) if word.startswith("--")]
        assert set(flags) <= known, f"{line}: flags not in --help: {set(flags) - known}"


def test_exec_start_pre_accepts_the_example_config(installed_unit: Path) -> None:
    """The ExecStartPre line, as installed, run against the shipped example configuration."""
    pre = next(v for s, k, v in unit_settings(installed_unit.read_text()) if k == "ExecStartPre")
    command = [str(EXAMPLE) if word == INSTALLED_CONFIG else word for word in shlex.split(pre)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration OK" in result.stdout


def test_the_agent_runs_as_the_group_the_rapl_udev_rule_grants() -> None:
    assert value("User") == "suanli"
    assert value("Group") == "suanli"
    assert "chgrp suanli" in UDEV_RULE.read_text()
    assert values("DynamicUser") in ([], ["no"])


def test_device_access_is_exactly_what_nvml_opens() -> None:
    assert value("DevicePolicy") == "closed"
    assert sorted(values("DeviceAllow")) == [
        "/dev/kmsg r",  # the kernel log: the driver's XID and NVSwitch SXid lines, read only
        "char-nvidia rw",  # major 195: /dev/nvidiactl and /dev/nvidia<N> (current drivers)
        "char-nvidia-caps r",  # MIG capability files /dev/nvidia-caps/nvidia-cap<N>
        "char-nvidia-frontend rw",  # major 195 as older drivers name it
    ]
    assert values("PrivateDevices") in ([], ["no"])  # yes would hide /dev/nvidia*


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        # opening /dev/kmsg where kernel.dmesg_restrict=1; nothing else
        ("CapabilityBoundingSet", "CAP_SYSLOG"),
        ("AmbientCapabilities", "CAP_SYSLOG"),
        ("ProtectKernelLogs", "no"),
        ("StateDirectory", "suanli-agent"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("MemoryMax", "128M"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("UMask", "0077"),
        # job attribution reads other users' /proc/<pid>/cgroup; the host collector /proc/stat
        ("ProtectProc", "default"),
        ("ProcSubset", "all"),
        ("StandardOutput", "journal"),
        ("StandardError", "journal"),
        ("SyslogIdentifier", "suanli-agent"),
    ],
)
def test_sandboxing_setting(key: str, expected: str) -> None:
    assert value(key) == expected


def test_system_calls_are_filtered_to_system_service() -> None:
    assert values("SystemCallFilter")[0] == "@system-service"


def test_the_unit_is_enabled_for_multi_user_boot() -> None:
    assert value("WantedBy", section="Install") == "multi-user.target"


# --- the example configuration -------------------------------------------------------------


def _leaf_keys(data: object, prefix: str = "") -> set[str]:
    if not isinstance(data, dict):
        return {prefix.rstrip(".")}
    keys: set[str] = set()
    for key, child in data.items():
        keys |= _leaf_keys(child, f"{prefix}{key}.")
    return keys


def test_example_config_passes_check_config(run_agent: RunAgent) -> None:
    result = run_agent("--check-config", "--config", str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_config_shows_every_key_of_the_configuration() -> None:
    shown = _leaf_keys(yaml.safe_load(EXAMPLE.read_text()))
    keys = set(option_paths())
    assert shown == keys, (
        f"missing from the example: {sorted(keys - shown)}; "
        f"not configuration keys: {sorted(shown - keys)}"
    )


def test_example_config_values_are_the_defaults() -> None:
    """The example documents the defaults, so installing it unchanged changes nothing."""
    assert load(EXAMPLE) == Config()


def test_every_example_key_has_a_comment() -> None:
    lines = EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.endswith(":"):
            continue  # comments and section headers
        above = lines[number - 1].strip() if number else ""
        assert above.startswith("#") or "#" in line, f"line {number + 1} has no comment: {line}"


def test_file_and_task_limits_fit_the_agents_caps() -> None:
    """LimitNOFILE leaves room for the HTTP connection cap, TasksMax for the agent's threads
    (systemd-analyze verify accepts both, above); tests/test_http_slow_clients.py runs 1,000
    hostile connections under these two values."""
    from agent.http_auth import WORKERS
    from agent.http_exchange import RESERVED_FILES
    from agent.http_loop import Limits

    files, tasks = int(value("LimitNOFILE")), int(value("TasksMax"))
    assert Limits().max_connections + RESERVED_FILES <= files
    gpus = 16  # one reader thread each, on the largest nodes
    fixed = 1 + 1 + 1 + 1 + 1 + WORKERS  # main, HTTP loop, sampler, XID events, kernel log, auth
    assert fixed + gpus <= tasks // 2, "half of TasksMax stays for threads a hung call leaves"
