"""The agent as an operator meets it: the command line, exit codes, signals and the HTTP endpoints.

Every test runs `python -m agent` as a real process on 127.0.0.1 (see conftest.py).
"""

from __future__ import annotations

import gzip
import http.client
import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from tests import scrapes

if TYPE_CHECKING:
    import subprocess

    from conftest import AgentProcess, Response

RunAgent = Callable[..., "subprocess.CompletedProcess[str]"]
StartAgent = Callable[..., "AgentProcess"]

NVIDIA_DRIVER = Path("/proc/driver/nvidia/version").exists()
no_gpu = pytest.mark.skipif(NVIDIA_DRIVER, reason="this host has an NVIDIA driver")

TEXT_FORMAT = "text/plain; version=0.0.4"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

FLAGS = (
    "--config",
    "--check-config",
    "--once",
    "--listen-address",
    "--interval",
    "--log-level",
    "--log-format",
    "--fake",
    "--at",
    "--web-config",
    "--version",
)

Samples = dict[str, list[tuple[dict[str, str], float]]]


def samples(text: str) -> Samples:
    """Prometheus text exposition -> {sample name: [(labels, value)]}; raises if it is invalid."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, []).append((s.labels, s.value))
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    matches = [
        v for lab, v in found.get(name, []) if all(lab.get(k) == x for k, x in labels.items())
    ]
    assert len(matches) == 1, f"{name}{labels}: expected one series, found {matches}"
    return matches[0]


def one_line(stderr: str) -> str:
    """The single line an error must be; fails showing stderr when there are more or none."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    return lines[0]


# --- one-shot modes ------------------------------------------------------------------------


@no_gpu
def test_once_without_config_or_gpu_prints_cpu_metrics_and_nvml_down(run_agent: RunAgent) -> None:
    result = run_agent("--once")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    found = samples(result.stdout)
    modes = {labels["mode"] for labels, _ in found["suanli_cpu_seconds_total"]}
    assert {"user", "system", "idle"} <= modes
    assert value(found, "suanli_cpu_seconds_total", mode="idle") > 0
    assert value(found, "suanli_cpus", kind="logical") >= 1
    assert value(found, "suanli_memory_total_bytes") > 0
    assert value(found, "suanli_nvml_up") == 0
    assert "suanli_gpu_up" not in found
    assert value(found, "suanli_collector_success", collector="host") == 1


def test_once_with_fake_scenario_shows_every_simulated_gpu(run_agent: RunAgent) -> None:
    result = run_agent("--once", "--fake", "h100-8")

    assert result.returncode == 0, result.stderr
    found = samples(result.stdout)
    assert value(found, "suanli_nvml_up") == 1
    up = {labels["gpu"]: v for labels, v in found["suanli_gpu_up"]}
    assert up == {str(i): 1.0 for i in range(8)}
    uuids = {labels["uuid"] for labels, _ in found["suanli_gpu_info"]}
    assert len(uuids) == 8
    assert all("H100" in labels["model"] for labels, _ in found["suanli_gpu_info"])


def test_once_at_shows_the_scenario_at_that_simulated_time(run_agent: RunAgent) -> None:
    result = run_agent("--once", "--fake", "mixed-faults", "--at", "90s")

    assert result.returncode == 0, result.stderr
    found = samples(result.stdout)
    assert value(found, "suanli_gpu_up", gpu="3") == 0  # lost since 60 s
    assert value(found, "suanli_gpu_health_check_failed", check="lost", gpu="3") == 1
    # XID 79 at 60 s, before the sample: the listener registered at 0 s and took it by then.
    # (Counted on the lost GPU today; attribution of a lost GPU's XIDs is being reworked: this
    # must stay true.)
    assert value(found, "suanli_gpu_xid_errors_total", gpu="3", xid="79") >= 1
    assert value(found, "suanli_gpu_xid_errors_total", gpu="1", xid="48") >= 1  # at 45 s
    assert value(found, "suanli_gpu_health_check_failed", check="thermal", gpu="6") == 1
    assert value(found, "suanli_gpu_health_check_failed", check="thermal", gpu="5") == 0

    before = samples(run_agent("--once", "--fake", "mixed-faults", "--at", "30s").stdout)
    assert value(before, "suanli_gpu_up", gpu="3") == 1
    assert not [
        lab for lab, _ in before.get("suanli_gpu_xid_errors_total", []) if lab["gpu"] == "3"
    ]
    assert value(before, "suanli_gpu_health_check_failed", check="thermal", gpu="6") == 0


def test_once_includes_gpm_activity_of_every_gpu(run_agent: RunAgent) -> None:
    result = run_agent("--once", "--fake", "h100-8")

    assert result.returncode == 0, result.stderr
    found = samples(result.stdout)
    for name in ("suanli_gpu_sm_active_ratio", "suanli_gpu_dram_active_ratio"):
        ratios = {labels["gpu"]: v for labels, v in found[name]}
        assert set(ratios) == {str(i) for i in range(8)}, name
        assert all(0 <= v <= 1 for v in ratios.values())
    assert any(v > 0 for _, v in found["suanli_gpu_sm_active_ratio"])


def test_at_without_the_simulator_exits_2_with_one_line(run_agent: RunAgent) -> None:
    result = run_agent("--once", "--at", "90s")

    assert result.returncode == 2
    assert one_line(result.stderr) == (
        "suanli-agent: config: --at: only with the simulated NVML (--fake SCENARIO)"
    )
    assert result.stdout == ""


@pytest.mark.parametrize("duration", ["soon", "0s", "90"])
def test_a_bad_at_duration_exits_2_with_one_line(run_agent: RunAgent, duration: str) -> None:
    result = run_agent("--once", "--fake", "h100-8", "--at", duration)

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith("suanli-agent: config: --at: must be a positive duration"), line
    assert f'"{duration}"' in line


def test_once_exits_3_when_a_collector_failed_and_still_prints(
    run_agent: RunAgent, tmp_path: Path
) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("collectors:\n  host: {procfs: /nonexistent}\n")

    result = run_agent("--config", str(config), "--once", "--fake", "h100-8")

    assert result.returncode == 3, result.stderr
    found = samples(result.stdout)
    assert value(found, "suanli_collector_success", collector="host") == 0
    assert value(found, "suanli_collector_success", collector="gpu") == 1
    assert len(found["suanli_gpu_up"]) == 8, "the other collectors' metrics are all there"
    ours = [line for line in result.stderr.splitlines() if line.startswith("suanli-agent:")]
    assert len(ours) == 1, result.stderr
    assert ours[0].startswith("suanli-agent: collector host failed: FileNotFoundError"), ours


def test_check_config_accepts_a_complete_valid_file(run_agent: RunAgent, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        """\
listen_address: "127.0.0.1:9445"
interval: 500ms
backend: fake
fake_scenario: h100-8
log: {level: debug, format: json}
topology: {cluster: bj1, hall: h2, rack: r07}
collectors:
  gpu: {enabled: true, detail: true}
  host: {enabled: true, procfs: /proc}
"""
    )

    result = run_agent("--config", str(config), "--check-config")

    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
    assert str(config) in result.stdout
    assert result.stderr == ""


def test_check_config_accepts_an_empty_file_as_defaults(
    run_agent: RunAgent, tmp_path: Path
) -> None:
    config = tmp_path / "empty.yaml"
    config.write_text("# nothing configured yet\n")

    result = run_agent("--config", str(config), "--check-config")

    assert result.returncode == 0, result.stderr


BAD_CONFIGS = {
    "malformed-yaml": ("interval: 5s\ncollectors:\n  gpu: {enabled: true\n", ["not valid YAML"]),
    "unknown-key": ("intreval: 5s\n", ['intreval: unknown key; did you mean "interval"?']),
    "unknown-nested-key": (
        "collectors:\n  gpu:\n    detial: true\n",
        ['collectors.gpu.detial: unknown key; did you mean "detail"?'],
    ),
    "wrong-type": ('collectors:\n  host:\n    enabled: "yes"\n', ["collectors.host.enabled:"]),
    "section-not-mapping": ("topology: rack-7\n", ["topology: must be a mapping"]),
    "negative-interval": (
        "interval: -5s\n",
        ['interval: must be a positive duration like "5s" or "500ms", got "-5s"'],
    ),
    "bad-listen-address": ("listen_address: localhost\n", ["listen_address: must be HOST:PORT"]),
    "bad-log-level": ("log:\n  level: loud\n", ["log.level: must be one of"]),
    "top-level-list": ("- interval: 5s\n", ["top level must be a mapping"]),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_exits_2_with_one_line_naming_the_key(
    run_agent: RunAgent, tmp_path: Path, case: str
) -> None:
    text, expected = BAD_CONFIGS[case]
    config = tmp_path / "agent.yaml"
    config.write_text(text)

    result = run_agent("--config", str(config), "--check-config")

    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert line.startswith(f"suanli-agent: config: {config}: "), line
    for part in expected:
        assert part in line
    assert result.stdout == ""


def test_malformed_yaml_message_points_at_the_line(run_agent: RunAgent, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("interval: 5s\nlog:\n  level: [info\n")

    result = run_agent("--config", str(config), "--check-config")

    assert result.returncode == 2
    assert "at line " in one_line(result.stderr)


def test_every_config_problem_is_reported_at_once(run_agent: RunAgent, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("intreval: 5s\nlog:\n  level: loud\ncollectors:\n  gpu:\n    detail: 1\n")

    result = run_agent("--config", str(config), "--check-config")

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert all(line.startswith(f"suanli-agent: config: {config}: ") for line in lines)
    assert [line.split(": ")[3] for line in lines] == [
        "intreval",
        "log.level",
        "collectors.gpu.detail",
    ]


def test_a_directory_as_config_is_unreadable(run_agent: RunAgent, tmp_path: Path) -> None:
    # chmod 000 does not stop root (the CI user), a directory does
    result = run_agent("--config", str(tmp_path), "--check-config")

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith(f"suanli-agent: config: {tmp_path}: cannot read"), line


def test_a_config_that_is_not_utf8_is_unreadable(run_agent: RunAgent, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_bytes(b"interval: 5s\n# caf\xe9 latin-1\n")

    result = run_agent("--config", str(config), "--check-config")

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith(f"suanli-agent: config: {config}: cannot read"), line


def test_a_missing_config_file_is_named(run_agent: RunAgent, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    result = run_agent("--config", str(missing))

    assert result.returncode == 2
    assert one_line(result.stderr) == f"suanli-agent: config: {missing}: no such file"


def test_bad_config_stops_a_serving_start_too(
    run_agent: RunAgent, tmp_path: Path, free_port: int
) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("interval: -5s\n")

    result = run_agent(
        "--config", str(config), "--listen-address", f"127.0.0.1:{free_port}", timeout=15
    )

    assert result.returncode == 2
    assert "interval: must be a positive duration" in one_line(result.stderr)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("localhost", "must be HOST:PORT"),
        ("127.0.0.1:99999", "port must be a number from 1 to 65535"),
        ("127.0.0.1:http", "port must be a number"),
        ("::1:9445", "needs brackets"),
    ],
)
def test_bad_listen_address_flag_exits_2(run_agent: RunAgent, address: str, expected: str) -> None:
    result = run_agent("--listen-address", address, timeout=15)

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "--listen-address" in line
    assert expected in line


def test_bad_interval_flag_exits_2(run_agent: RunAgent) -> None:
    result = run_agent("--interval", "0s", "--once")

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "--interval" in line
    assert '"0s"' in line


def test_unknown_flag_exits_2(run_agent: RunAgent) -> None:
    result = run_agent("--no-such-flag", timeout=15)

    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr


def test_help_lists_every_flag(run_agent: RunAgent) -> None:
    result = run_agent("--help")

    assert result.returncode == 0
    for flag in FLAGS:
        assert flag in result.stdout, f"{flag} missing from --help"


def test_unknown_fake_scenario_exits_2_with_one_line(run_agent: RunAgent) -> None:
    result = run_agent("--once", "--fake", "no-such-scenario")

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith("suanli-agent: config: fake_scenario: no-such-scenario"), line
    assert "h100-8" in line  # the built-in names are listed


def test_check_config_rejects_an_unknown_fake_scenario(run_agent: RunAgent, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("backend: fake\nfake_scenario: no-such-scenario\n")

    result = run_agent("--config", str(config), "--check-config")

    # --check-config must not call OK a configuration the agent then refuses to start with
    assert result.returncode == 2, result.stdout
    assert "no-such-scenario" in one_line(result.stderr)


# --- serving -------------------------------------------------------------------------------


def test_port_in_use_exits_1_with_one_clear_line(run_agent: RunAgent) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run_agent("--listen-address", f"127.0.0.1:{port}", timeout=15)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "cannot listen" in line]
    assert len(errors) == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in errors[0]


def test_address_not_on_this_host_exits_1(run_agent: RunAgent, free_port: int) -> None:
    # 192.0.2.0/24 is TEST-NET-1: never configured on a real interface
    result = run_agent("--listen-address", f"192.0.2.1:{free_port}", timeout=15)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 192.0.2.1:{free_port}" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_agent_cleanly_within_2s(
    agent_process: StartAgent, sig: signal.Signals
) -> None:
    agent = agent_process()

    started = time.monotonic()
    code = agent.stop(sig)
    elapsed = time.monotonic() - started

    assert code == 0, agent.stderr()
    assert elapsed < 2.0, f"took {elapsed:.2f}s to stop"
    assert f"received {sig.name}" in agent.stderr()
    assert "Traceback" not in agent.stderr()


def test_sigterm_is_not_held_up_by_an_idle_keep_alive_client(agent_process: StartAgent) -> None:
    agent = agent_process()
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        assert conn.getresponse().read()  # the connection stays open, idle, afterwards

        started = time.monotonic()
        code = agent.stop(signal.SIGTERM)
        elapsed = time.monotonic() - started
    finally:
        conn.close()

    assert code == 0, agent.stderr()
    assert elapsed < 2.0, f"took {elapsed:.2f}s to stop"


def test_fifty_concurrent_scrapes_all_succeed(agent_process: StartAgent) -> None:
    agent = agent_process()
    start = threading.Barrier(50)
    kinds = [{}, {"Accept-Encoding": "gzip"}, {"Accept": OPENMETRICS}]

    def scrape(i: int) -> tuple[int, Samples]:
        headers = kinds[i % len(kinds)]
        start.wait(timeout=10)
        response = agent.get("/metrics", headers)
        body = response.body
        if response.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        if "Accept" in headers:
            assert body.endswith(b"# EOF\n")
            names = {s.name for f in openmetrics_families(body.decode()) for s in f.samples}
            return response.status, {n: [] for n in names}
        return response.status, samples(body.decode())

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(scrape, range(50)))

    assert [status for status, _ in results] == [200] * 50
    assert all("suanli_cpu_seconds_total" in found for _, found in results)


def test_healthz_reports_ok_with_a_reason(agent_process: StartAgent) -> None:
    agent = agent_process()

    response = agent.get("/healthz")

    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("ok"), response.text


def test_serving_at_starts_the_simulated_clock_there(agent_process: StartAgent) -> None:
    agent = agent_process("--fake", "mixed-faults", "--at", "90s", "--interval", "200ms")

    # the XID 79 of t=60 s reaches the ledger from the kernel log, read beside the sampling
    series = scrapes.wait_for(
        agent,
        lambda s: (scrapes.value(s, "suanli_gpu_xid_errors_total", gpu="3", xid="79") or 0) >= 1,
        "GPU 3's XID 79 from before the start",
    )
    assert scrapes.value(series, "suanli_gpu_up", gpu="3") == 0
    assert scrapes.value(series, "suanli_gpu_health_check_failed", check="thermal", gpu="6") == 1
    assert agent.get("/healthz").status == 200


def test_index_links_to_metrics_and_unknown_paths_are_404(agent_process: StartAgent) -> None:
    agent = agent_process()

    index = agent.get("/")
    missing = agent.get("/metricz")

    assert index.status == 200
    assert 'href="/metrics"' in index.text
    assert missing.status == 404
    assert "/metrics" in missing.text  # says where to look instead


def _plain_text(response: Response) -> str:
    assert response.status == 200
    if response.headers.get("content-encoding") == "gzip":
        return gzip.decompress(response.body).decode()
    return response.text


def test_metrics_are_gzipped_only_when_the_client_accepts_it(agent_process: StartAgent) -> None:
    agent = agent_process()

    plain = agent.get("/metrics")
    zipped = agent.get("/metrics", {"Accept-Encoding": "gzip, deflate"})

    assert "content-encoding" not in plain.headers
    assert plain.headers["content-type"].startswith(TEXT_FORMAT)
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["content-type"].startswith(TEXT_FORMAT)
    assert len(zipped.body) < len(plain.body)
    assert "suanli_cpu_seconds_total" in samples(_plain_text(zipped))


def test_openmetrics_is_served_when_asked_for(agent_process: StartAgent) -> None:
    agent = agent_process("--fake", "h100-8")

    response = agent.get("/metrics", {"Accept": OPENMETRICS})

    assert response.status == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    found = {f.name: f for f in openmetrics_families(response.text)}
    assert found["suanli_cpu_seconds"].type == "counter"
    assert found["suanli_gpu_energy_joules"].type == "counter"
    # the metric contract: no _created samples, they would double every counter's series
    assert not [s.name for f in found.values() for s in f.samples if s.name.endswith("_created")]


def test_json_log_format_writes_one_json_object_per_line(agent_process: StartAgent) -> None:
    agent = agent_process("--log-format", "json")

    assert agent.stop() == 0
    lines = [line for line in agent.stderr().splitlines() if line.strip()]
    assert lines, "the agent logged nothing"
    entries = [json.loads(line) for line in lines]
    assert all({"ts", "level", "logger", "msg"} <= entry.keys() for entry in entries)
    messages = " | ".join(entry["msg"] for entry in entries)
    assert "serving metrics on 127.0.0.1" in messages
    assert "stopped" in messages


def test_a_head_request_does_not_silence_later_gets_on_the_connection(
    agent_process: StartAgent,
) -> None:
    import http.client

    agent = agent_process()
    connection = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=5)
    connection.request("HEAD", "/metrics")
    head = connection.getresponse()
    assert head.status == 200 and head.read() == b""
    connection.request("GET", "/metrics")
    body = connection.getresponse().read().decode()
    assert "suanli_nvml_up" in body
    connection.close()


# --- hostile input (issue 18) -------------------------------------------------------------------


def test_the_interval_is_bounded_with_a_clear_message(run_agent: RunAgent) -> None:
    for interval in ("1ms", "99ms", "2h", "999999999999h"):
        result = run_agent("--once", "--fake", "h100-8", "--interval", interval)
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            f'suanli-agent: config: --interval: must be from 100ms to 1h, got "{interval}"\n'
        )


def test_check_config_checks_paths_exist_are_readable_and_the_right_kind(
    run_agent: RunAgent, tmp_path: Path
) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        "collectors:\n"
        "  host: {procfs: /nonexistent}\n"
        "  power: {sysfs: /etc/hostname}\n"
        "  kmsg: {path: /tmp}\n"
        "  infiniband: {enabled: false, sysfs: /nonexistent}\n"  # disabled: not checked
    )
    result = run_agent("--config", str(config), "--check-config")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        'suanli-agent: config: collectors.host.procfs: "/nonexistent": No such file or directory',
        'suanli-agent: config: collectors.power.sysfs: "/etc/hostname": not a directory',
        'suanli-agent: config: collectors.kmsg.path: "/tmp": a directory, expected a readable '
        "file or device",
    ]


def test_a_label_value_that_cannot_be_exported_is_refused(
    run_agent: RunAgent, tmp_path: Path
) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text('topology: {rack: "R\\t7", hall: "' + "h" * 300 + '"}\n')
    result = run_agent("--config", str(config), "--check-config")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert [line.split(": ")[3] for line in lines] == ["topology.rack", "topology.hall"]


def test_an_unexpected_error_is_one_line_and_the_documented_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent import cli

    def broken(path: Path) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(cli, "load", broken)
    assert cli.main(["--check-config", "--config", "/etc/hostname"]) == 2  # reading input: 2
    assert capsys.readouterr().err == (
        "suanli-agent: config: cannot load: RecursionError: maximum recursion depth exceeded\n"
    )

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(cli, "_check_config", crash)
    assert cli.main(["--check-config"]) == 1  # anything else: 1
    assert capsys.readouterr().err == (
        "suanli-agent: unexpected error: OSError: [Errno 24] Too many open files\n"
    )
