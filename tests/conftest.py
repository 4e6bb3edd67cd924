"""Shared fixtures: agent processes, a real Prometheus, promtool, free loopback ports.

Every process a fixture starts is stopped in the fixture's finalizer (SIGTERM, then SIGKILL), so
no test leaves one behind, whatever it asserts. Network traffic stays on 127.0.0.1.

Tests that need Prometheus's own tools skip when they are not installed, unless
`SUANLI_REQUIRE_PROMETHEUS=1` is set (as `.ci/run` does): then they fail, so CI cannot pass by
skipping them.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from suanli_sim.cabi import violations

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENARIO_DIR = REPO_ROOT / "suanli_sim" / "scenarios"
LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite the golden files from the current output instead of comparing with them",
    )


@pytest.fixture(scope="session", autouse=True)
def _abi_violations_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where agent subprocesses record calls that break nvml.h (they inherit the variable)."""
    path = tmp_path_factory.mktemp("abi") / "violations.txt"
    path.touch()
    before = os.environ.get(violations.ENV)
    os.environ[violations.ENV] = str(path)
    os.environ[violations.OWNER] = str(os.getpid())
    yield path
    if before is None:
        os.environ.pop(violations.ENV, None)
    else:
        os.environ[violations.ENV] = before


@pytest.fixture(autouse=True)
def _fail_on_abi_violation(_abi_violations_file: Path) -> Iterator[None]:
    """Fail a test during which any call broke nvml.h's C interface (in this process, or in
    an agent it started): on a real driver such a call crashes the process or corrupts it."""
    violations.take()
    _abi_violations_file.write_text("")
    yield
    found = [str(v) for v in violations.take()]
    found += _abi_violations_file.read_text().splitlines()
    _abi_violations_file.write_text("")
    if found:
        pytest.fail(
            "calls that break NVML's C interface (nvml.h) were made:\n  " + "\n  ".join(found),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _close_gpu_nodes() -> Iterator[None]:
    """Stop the XID listener threads of the fake-NVML nodes a test made."""
    yield
    from tests.gpu_helpers import close_nodes

    close_nodes()


# --- helpers -------------------------------------------------------------------------------


def prometheus_required() -> bool:
    """True when tests needing promtool/prometheus must fail rather than skip."""
    return os.environ.get("SUANLI_REQUIRE_PROMETHEUS", "").strip().lower() not in (
        "",
        "0",
        "false",
        "no",
    )


def builtin_scenarios() -> list[str]:
    """Names of the fake NVML's built-in scenarios (`suanli_sim/scenarios/<name>.yaml`)."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def pick_free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def agent_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment agent subprocesses run in: this checkout first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("NOTIFY_SOCKET", None)  # never talk to the test runner's systemd
    env.pop("WATCHDOG_USEC", None)
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def http_get(
    port: int, path: str, headers: Mapping[str, str] | None = None, timeout: float = 5.0
) -> Response:
    """GET http://127.0.0.1:port/path; the body as sent (no decompression)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        resp = conn.getresponse()
        body = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        conn.close()


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is not None:
        return path
    reason = f"`{name}` is not on PATH (Debian package `prometheus` provides it)"
    if prometheus_required():
        pytest.fail(f"{reason}, and SUANLI_REQUIRE_PROMETHEUS is set", pytrace=False)
    pytest.skip(reason)


# --- binaries and ports ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of `promtool`; skips (or fails under SUANLI_REQUIRE_PROMETHEUS=1) when missing."""
    return _binary("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    """Path of `prometheus`; skips (or fails under SUANLI_REQUIRE_PROMETHEUS=1) when missing."""
    return _binary("prometheus")


@pytest.fixture
def free_port() -> int:
    return pick_free_port()


# --- the agent as a process ---------------------------------------------------------------


@pytest.fixture
def run_agent(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python -m agent ARGS` to completion (`--once`, `--check-config`, errors)."""

    def run(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agent", *args],
            cwd=tmp_path,
            env=agent_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@dataclass
class AgentProcess:
    """A running `python -m agent`, serving on 127.0.0.1:`port`."""

    proc: subprocess.Popen[bytes]
    port: int
    args: tuple[str, ...]
    stderr_path: Path
    stdout_path: Path
    _files: list[IO[bytes]] = field(default_factory=list, repr=False)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def get(self, path: str = "/metrics", headers: Mapping[str, str] | None = None) -> Response:
        return http_get(self.port, path, headers)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send `sig` and wait for the exit; returns the exit code (raises on timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def close(self) -> None:
        _stop(self.proc)
        for f in self._files:
            f.close()


def _given_listen_address(args: Sequence[str]) -> str | None:
    """The value of `--listen-address` in ARGS, if any."""
    for i, arg in enumerate(args):
        if arg.startswith("--listen-address="):
            return arg.partition("=")[2]
        if arg == "--listen-address" and i + 1 < len(args):
            return args[i + 1]
    return None


def _wait_ready(agent: AgentProcess, deadline: float) -> str | None:
    """None once /healthz or /metrics answers; else why not (the process exited, timed out)."""
    while time.monotonic() < deadline:
        if agent.proc.poll() is not None:
            return f"exited with code {agent.proc.returncode} before serving"
        for path in ("/healthz", "/metrics"):
            try:
                agent.get(path)
                return None
            except OSError:
                continue
        time.sleep(0.05)
    return f"did not answer on {agent.address} within {READY_TIMEOUT_S:.0f}s"


def _launch(
    args: Sequence[str], given: str | None, folder: Path, name: str, env: Mapping[str, str] | None
) -> AgentProcess:
    """`python -m agent ARGS` in FOLDER, on a free port unless ARGS name one (`given`); its
    stderr and stdout go to FOLDER/NAME.stderr and FOLDER/NAME.stdout."""
    full = list(args)
    if given is None:
        port = pick_free_port()
        full += ["--listen-address", f"{LOOPBACK}:{port}"]
    else:
        tail = given.rpartition(":")[2]
        port = int(tail) if tail.isdigit() else 0
    err_path, out_path = folder / f"{name}.stderr", folder / f"{name}.stdout"
    err, out = err_path.open("wb"), out_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", *full],
        cwd=folder,
        env=agent_env(env),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
    )
    return AgentProcess(proc, port, tuple(full), err_path, out_path, [err, out])


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """Factory: `agent_process(*args, wait=True)` starts `python -m agent ARGS` on 127.0.0.1.

    A free port is chosen and `--listen-address 127.0.0.1:PORT` added unless ARGS name one.
    With `wait`, returns once /healthz or /metrics answers (fails with the agent's stderr
    otherwise). Every agent started is stopped when the test ends.
    """
    started: list[AgentProcess] = []

    def start(*args: str, wait: bool = True, env: Mapping[str, str] | None = None) -> AgentProcess:
        given = _given_listen_address(args)
        attempts = 1 if given is not None else 3
        why = ""
        for attempt in range(attempts):
            agent = _launch(args, given, tmp_path, f"agent{len(started)}", env)
            started.append(agent)
            if not wait:
                return agent
            problem = _wait_ready(agent, time.monotonic() + READY_TIMEOUT_S)
            if problem is None:
                return agent
            agent.close()
            why = f"agent {' '.join(agent.args)} {problem}; its stderr:\n{agent.stderr()}"
            lost_race = "cannot listen" in agent.stderr() and agent.proc.returncode == 1
            if not (lost_race and attempt + 1 < attempts):
                break  # only a port taken between choosing and binding is worth a retry
        pytest.fail(why, pytrace=False)

    yield start
    for agent in started:
        agent.close()


# --- a real Prometheus ---------------------------------------------------------------------


@dataclass
class PrometheusServer:
    """A running Prometheus on 127.0.0.1:`port` scraping the targets it was started with."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as resp:
                payload = json.load(resp)
        except urllib.error.HTTPError as err:
            payload = json.load(err)
        if payload.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params}: {payload}")
        return payload["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the `result` list (for a vector: dicts of `metric` and `value`)."""
        result: list[dict[str, Any]] = self.api("/api/v1/query", {"query": promql})["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("/api/v1/targets")["activeTargets"]
        return active

    def wait_for(
        self,
        promql: str,
        until: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 20.0,
    ) -> list[dict[str, Any]]:
        """Poll `promql` until `until(result)` holds; fail showing the targets if it never does."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while True:
            result = self.query(promql)
            if until(result):
                return result
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        health = [(t["scrapeUrl"], t["health"], t.get("lastError", "")) for t in self.targets()]
        raise AssertionError(
            f"{promql!r} never satisfied the condition within {timeout:.0f}s; "
            f"last result: {result}; targets: {health}"
        )

    def close(self) -> None:
        _stop(self.proc)
        if self._log is not None:
            self._log.close()


def launch_prometheus(prometheus_bin: str, config: Path, workdir: Path) -> PrometheusServer:
    """Start Prometheus with `config` on a free loopback port and wait for /-/ready.

    The caller stops it (`server.close()`); a server that never gets ready fails the test
    with its log.
    """
    port = pick_free_port()
    log_path = workdir / f"{config.stem}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / f'{config.stem}-data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--log.level=warn",
        ],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = PrometheusServer(proc, port, log_path, log)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if http_get(port, "/-/ready", timeout=2.0).status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.close()
    pytest.fail(
        f"Prometheus did not become ready on {LOOPBACK}:{port} (exit code {proc.returncode}); "
        f"its log:\n{log_path.read_text(errors='replace')}",
        pytrace=False,
    )


@pytest.fixture
def prometheus_server(
    prometheus_bin: str, tmp_path: Path
) -> Iterator[Callable[..., PrometheusServer]]:
    """Factory: `prometheus_server(targets)` starts Prometheus scraping `targets` every 1s.

    `targets` is a list of "host:port" (one job, `suanli`) or a mapping of job name to such a
    list. Returns once /-/ready answers 200. Every server is stopped when the test ends.
    """
    started: list[PrometheusServer] = []

    def start(
        targets: Sequence[str] | Mapping[str, Sequence[str]], scrape_interval: str = "1s"
    ) -> PrometheusServer:
        jobs = dict(targets) if isinstance(targets, Mapping) else {"suanli": list(targets)}
        n = len(started)
        config = {
            "global": {
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "evaluation_interval": scrape_interval,
            },
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(addrs)}]}
                for job, addrs in jobs.items()
            ],
        }
        config_path = tmp_path / f"prometheus{n}.yml"
        config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        server = launch_prometheus(prometheus_bin, config_path, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
