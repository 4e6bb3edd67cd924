"""SIGHUP reloads the configuration; a bad one is refused and the old agent keeps serving.

Every test runs `python -m agent` as a real process on 127.0.0.1 (see conftest.py).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LOOPBACK, agent_env, http_get, pick_free_port

if TYPE_CHECKING:
    from conftest import AgentProcess

StartAgent = Callable[..., "AgentProcess"]

OK = "suanli_config_last_reload_successful"
STAMP = "suanli_config_last_reload_success_timestamp_seconds"
FAILED = "suanli_config_reloads_failed_total"
FIRST = "interval: 500ms\ntopology: {cluster: zjk-a, hall: H3, rack: R07}\n"


def series(agent: AgentProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = agent.get("/metrics")
    assert response.status == 200
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            found.setdefault(s.name, []).append((s.labels, s.value))
    return found


def scalar(agent: AgentProcess, name: str) -> float:
    return series(agent)[name][0][1]


def wait_until(
    check: Callable[[], object], timeout: float = 6.0, what: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"the condition never held {what()}"
        time.sleep(0.05)


def start(agent_process: StartAgent, config: Path, text: str = FIRST) -> AgentProcess:
    config.write_text(text)
    agent = agent_process("--config", str(config), "--fake", "h100-8")
    assert scalar(agent, OK) == 1.0
    return agent


def test_a_changed_file_is_applied_on_sighup(agent_process: StartAgent, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    agent = start(agent_process, config)
    assert series(agent)["suanli_node_info"][0][0]["rack"] == "R07"
    started_stamp = scalar(agent, STAMP)
    config.write_text("interval: 200ms\ntopology: {cluster: zjk-a, hall: H3, rack: R08}\n")
    agent.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: series(agent)["suanli_node_info"][0][0]["rack"] == "R08")
    assert scalar(agent, OK) == 1.0
    assert scalar(agent, STAMP) > started_stamp
    wait_until(lambda: re.search(r"reloaded the configuration from .* every 0\.2s", agent.stderr()))
    assert series(agent)["suanli_gpu_up"], "the GPUs are still there after the swap"
    assert agent.get("/healthz").status == 200
    assert "Traceback" not in agent.stderr()
    assert agent.stop() == 0


def test_a_corrupted_file_is_refused_and_the_old_config_keeps_serving(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    config = tmp_path / "agent.yaml"
    agent = start(agent_process, config)
    config.write_text("interval: [oops\n")
    refused(agent, "not valid YAML")
    config.write_text("interval: -5s\nno_such_key: 1\n")
    refused(agent, "no_such_key", lines=2)
    config.write_text(FIRST.replace("R07", "R09"))
    agent.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: scalar(agent, OK) == 1.0)
    assert series(agent)["suanli_node_info"][0][0]["rack"] == "R09"


def test_a_deleted_file_is_refused_and_the_old_config_keeps_serving(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    config = tmp_path / "agent.yaml"
    agent = start(agent_process, config)
    config.unlink()
    refused(agent, "no such file")
    assert agent.get("/healthz").status == 200


def test_a_changed_listen_address_needs_a_restart(tmp_path: Path) -> None:
    port = pick_free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(FIRST + f"listen_address: {LOOPBACK}:{port}\n")
    log_path = tmp_path / "agent.stderr"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(config), "--fake", "h100-8"],
            cwd=tmp_path,
            env=agent_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_until(lambda: _answers(port), timeout=15.0)
        config.write_text(FIRST.replace("R07", "R10") + f"listen_address: {LOOPBACK}:1\n")
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "R10" in http_get(port, "/metrics").text)
        text = log_path.read_text()
        assert re.search(r"listen_address changed .* restart the agent", text), text
        assert f"{OK} 1.0" in http_get(port, "/metrics").text
    finally:
        proc.terminate()
        proc.wait(5)


def _answers(port: int) -> bool:
    try:
        return http_get(port, "/metrics", timeout=1.0).status == 200
    except OSError:
        return False


def refused(agent: AgentProcess, why: str, lines: int = 1) -> None:
    """SIGHUP; the reload is refused with `lines` log lines and the old agent keeps serving."""
    before = agent.stderr().count("reload refused")
    agent.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: agent.stderr().count("reload refused") - before >= lines)
    time.sleep(0.2)  # no further line comes
    log = agent.stderr()
    new = [line for line in log.splitlines() if "reload refused" in line][before:]
    assert len(new) == lines, log
    assert any(why in line for line in new), new
    found = series(agent)
    assert found[OK][0][1] == 0.0
    assert found["suanli_node_info"][0][0]["rack"] == "R07", "the old configuration serves"
    assert len(found["suanli_gpu_up"]) == 8
    assert "Traceback" not in log


# --- every kind of bad file, one after another, on one agent --------------------------------

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
BAD_FILES = {
    "an alias bomb": ALIAS_BOMB,
    "deep nesting": "interval: " + "[" * 5000 + "]" * 5000 + "\n",
    "a 5,000-digit integer": "collectors: {jobs: {per_process_limit: " + "9" * 5000 + "}}\n",
    "a lone surrogate label": 'topology: {rack: "\\ud800"}\n',
    "a NUL in a label": 'topology: {rack: "R\\0"}\n',
    "an interval of 999999999999h": "interval: 999999999999h\n",
    "an interval of 1ms": "interval: 1ms\n",
    "not UTF-8": "\udcff\udcfe binary",
}


def test_each_bad_file_is_refused_counted_and_never_kills(
    agent_process: StartAgent, tmp_path: Path
) -> None:
    config = tmp_path / "agent.yaml"
    simulated = FIRST + "backend: fake\nfake_scenario: h100-8\n"  # no --fake: the file decides
    config.write_text(simulated)
    agent = agent_process("--config", str(config))
    binary = tmp_path / "scenario.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    files = {**BAD_FILES, "a binary scenario path": f"backend: fake\nfake_scenario: {binary}\n"}
    for count, (what, text) in enumerate(files.items(), start=1):
        config.write_bytes(text.encode("utf-8", "surrogateescape"))
        agent.proc.send_signal(signal.SIGHUP)
        wait_until(lambda n=count: scalar(agent, FAILED) == n, what=agent.stderr)  # type: ignore[misc]
        assert agent.proc.poll() is None, what
        assert scalar(agent, OK) == 0.0, what
        assert series(agent)["suanli_node_info"][0][0]["rack"] == "R07", what
    refused = [line for line in agent.stderr().splitlines() if "reload refused" in line]
    assert len(refused) == len(files)  # one line each
    assert "Traceback" not in agent.stderr()
    config.write_text(simulated.replace("R07", "R09"))
    agent.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: series(agent)["suanli_node_info"][0][0]["rack"] == "R09")
    assert scalar(agent, OK) == 1.0
