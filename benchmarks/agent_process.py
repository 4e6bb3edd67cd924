"""The real agent as a subprocess (`python -m agent --fake ...`) and what /proc says about it."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from benchmarks.machine import ROOT

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Web:
    """A `--web-config` file and how a client gets in: TLS context and headers (basic auth)."""

    path: Path
    context: ssl.SSLContext | None = None
    headers: dict[str, str] = field(default_factory=dict)


class AgentFailed(RuntimeError):
    """The agent process exited or never answered; the message carries its log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class AgentProcess:
    """`with AgentProcess("h100-8") as agent:` starts the agent and always stops it."""

    def __init__(
        self,
        scenario: str,
        interval: str = "1s",
        config: Path | None = None,
        prefix: tuple[str, ...] = (),
        web: Web | None = None,
    ) -> None:
        self.prefix = prefix  # e.g. ("prlimit", "--nofile=1024:1024", "--"): the unit's limits
        self.web = web
        self.scenario = scenario
        self.interval = interval
        self.config = config
        self.port = free_port()
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise AgentFailed("the agent is not running")
        return self._proc.pid

    def command(self) -> list[str]:
        args = [*self.prefix, sys.executable, "-m", "agent", "--fake", self.scenario]
        args += ["--interval", self.interval]
        args += ["--listen-address", f"{LOOPBACK}:{self.port}", "--log-level", "warning"]
        if self.config is not None:
            args += ["--config", str(self.config)]
        if self.web is not None:
            args += ["--web-config", str(self.web.path)]
        return args

    def __enter__(self) -> AgentProcess:
        self._log = tempfile.TemporaryFile(prefix="suanli-bench-agent-")
        self._proc = subprocess.Popen(
            self.command(), cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            if self._answers():
                return
            time.sleep(0.05)
        raise AgentFailed(f"agent did not answer within {READY_TIMEOUT_S:.0f}s\n{self.log_tail()}")

    def connection(self, timeout: float = 2.0) -> http.client.HTTPConnection:
        """A connection to the agent: HTTPS with the web config's client context when set."""
        if self.web is None or self.web.context is None:
            return http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        return http.client.HTTPSConnection(
            LOOPBACK, self.port, timeout=timeout, context=self.web.context
        )

    def get(self, path: str = "/metrics") -> tuple[int, bytes]:
        """(status, body) of one GET on a fresh connection, with the web config's credentials."""
        connection = self.connection(5.0)
        try:
            connection.request("GET", path, headers=self.web.headers if self.web else {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _answers(self) -> bool:
        try:
            return self.get()[0] == 200
        except (OSError, http.client.HTTPException):
            return False

    def _check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            code = self._proc.returncode
            raise AgentFailed(f"agent exited with code {code}\n{self.log_tail()}")

    def log_tail(self, size: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0, os.SEEK_END)
        self._log.seek(max(0, self._log.tell() - size))
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
            self._log = None

    def rss_mib(self) -> float:
        """VmRSS from /proc/PID/status, in MiB."""
        self._check_alive()
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AgentFailed(f"no VmRSS in /proc/{self.pid}/status")

    def threads(self) -> int:
        """Threads of the agent process (what systemd's TasksMax counts)."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        raise AgentFailed(f"no Threads in /proc/{self.pid}/status")

    def open_files(self) -> int:
        """File descriptors the agent holds (what LimitNOFILE caps)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self) -> float:
        """utime + stime of the agent process (all its threads), from /proc/PID/stat."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
