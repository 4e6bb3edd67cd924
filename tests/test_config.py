"""Configuration: useful defaults with no file, strict checks, every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import (
    Config,
    ConfigError,
    from_mapping,
    load,
    parse_duration,
    parse_listen_address,
    with_overrides,
)


def test_defaults_serve_on_9445_every_5s_with_gpu_and_host() -> None:
    config = Config()
    assert config.listen_address == ":9445"
    assert config.interval == 5.0
    assert config.backend == "nvml"
    assert config.collectors.gpu.enabled and not config.collectors.gpu.detail
    assert config.collectors.host.enabled


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("2h", 7200.0), ("0.25s", 0.25)],
)
def test_durations_use_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["-5s", "5", "0s", "fast", "", "5 s", 5, True, None])
def test_bad_durations_explain_the_expected_form(bad: object) -> None:
    with pytest.raises(ValueError, match="duration like"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "address"),
    [(":9445", ("", 9445)), ("127.0.0.1:9100", ("127.0.0.1", 9100)), ("[::1]:80", ("::1", 80))],
)
def test_listen_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_listen_address(text) == address


@pytest.mark.parametrize("bad", ["9445", "host:0", "host:70000", "::1:80", "host:http", 9445])
def test_bad_listen_addresses(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_listen_address(bad)


def test_a_full_file_is_read_into_nested_settings(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "listen_address: 127.0.0.1:9500\n"
        "interval: 2s\n"
        "log: {level: debug, format: json}\n"
        "topology: {cluster: zjk-1, hall: H3, rack: R12}\n"
        "collectors:\n  gpu: {detail: true}\n  host: {procfs: /host/proc}\n"
    )
    config = load(path)
    assert config.listen_address == "127.0.0.1:9500"
    assert config.interval == 2.0
    assert config.log.format == "json"
    assert config.topology.rack == "R12"
    assert config.collectors.gpu.detail is True
    assert config.collectors.gpu.enabled is True
    assert config.collectors.host.procfs == "/host/proc"


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        from_mapping(
            {
                "intervall": "5s",
                "log": {"level": "loud"},
                "collectors": {"gpu": {"detail": "yes", "interval": "-5s"}},
                "topology": "rack-1",
            }
        )
    problems = caught.value.problems
    assert len(problems) == 5
    assert 'intervall: unknown key; did you mean "interval"?' in problems
    assert any(p.startswith("log.level: must be one of debug, info") for p in problems)
    assert "collectors.gpu.detail: must be true or false, got 'yes'" in problems
    assert any(p.startswith("collectors.gpu.interval: unknown key") for p in problems)
    assert any(p.startswith("topology: must be a mapping") for p in problems)


def test_negative_interval_names_the_key_and_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("interval: -5s\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.problems == [
        f'{path}: interval: must be a positive duration like "5s" or "500ms", got "-5s"'
    ]


def test_malformed_yaml_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("interval: 5s\nlog:\n  level: [debug\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: not valid YAML:") and "line" in problem


def test_a_non_mapping_top_level_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- interval: 5s\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load(path)


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing set\n")
    assert load(path) == Config()


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path)  # a directory
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00interval")
    with pytest.raises(ConfigError, match="cannot read"):
        load(binary)


def test_flags_override_the_file_and_are_checked_the_same_way() -> None:
    config = with_overrides(Config(), {"interval": "1s", "listen_address": "127.0.0.1:1"})
    assert config.interval == 1.0 and config.listen_address == "127.0.0.1:1"
    with pytest.raises(ConfigError) as caught:
        with_overrides(Config(), {"interval": "soon", "listen_address": "nowhere"})
    assert [p.split(":")[0] for p in caught.value.problems] == ["--interval", "--listen-address"]
