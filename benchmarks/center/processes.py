"""The processes of a simulated center: the simulator, Prometheus, VictoriaMetrics, vmagent.

Each runs in the work folder with its log there, is waited for until it serves, and is always
stopped (SIGTERM, then SIGKILL) by `Service.stop`. CPU time and resident memory come from
/proc for the process and its children (the simulator's worker processes).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULE_DIR = ROOT / "deploy" / "prometheus" / "rules"
SHIPPED_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
LOOPBACK = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class ServiceFailed(RuntimeError):
    """A process exited or never served; the message carries its log's tail."""


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def pids(self) -> list[int]:
        return [self.proc.pid, *children(self.proc.pid)]

    def rss_bytes(self) -> int:
        return sum(_statm_rss(pid) for pid in self.pids())

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids())

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
        return self.proc.returncode


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _statm_rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def spawn(name: str, command: list[str], workdir: Path, port: int) -> Service:
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )
    return Service(name, proc, log_path, port, log)


def wait_until(service: Service, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            raise ServiceFailed(f"{service.name} exited:\n{service.log_tail()}")
        try:
            if ready():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    service.stop()
    raise ServiceFailed(f"{service.name} not ready within {timeout:.0f}s:\n{service.log_tail()}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return False


def fetch(url: str, timeout: float = 60.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
        return body


# --- the four programs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    nodes: int
    base_port: int
    interval: str
    file_sd: Path
    seed: int = 1


def start_simulator(fleet: Fleet, workdir: Path, timeout: float = 300.0) -> tuple[Service, str]:
    """The simulator; returns it and its one-line summary, once every node serves."""
    command = [sys.executable, "-m", "agent", "simulate", "--nodes", str(fleet.nodes)]
    command += ["--base-port", str(fleet.base_port), "--interval", fleet.interval]
    command += ["--seed", str(fleet.seed), "--file-sd", str(fleet.file_sd)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    log_path = workdir / "simulator.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    service = Service("simulator", proc, log_path, fleet.base_port, log)
    wait_until(service, lambda: "ready in" in log_path.read_text(errors="replace"), timeout)
    summary = next(line for line in log_path.read_text().splitlines() if "ready in" in line)
    return service, summary


def prometheus_config(file_sd: Path, interval: str, workdir: Path) -> Path:
    """The shipped prometheus.yml for one shard holding every node: our file_sd file, the
    benchmark's interval, absolute rule paths, no remote_write."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED_CONFIG.read_text())
    config["global"].update(
        scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval
    )
    config["rule_files"] = [str(SHIPPED_CONFIG.parent / f) for f in config["rule_files"]]
    job = config["scrape_configs"][0]
    job["file_sd_configs"] = [{"files": [str(file_sd)], "refresh_interval": "30s"}]
    hashmod, keep = job["relabel_configs"]
    hashmod["modulus"], keep["regex"] = 1, "0"  # one shard: every node
    config.pop("remote_write", None)
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start_prometheus(
    binary: str, config: Path, workdir: Path, port: int, timeout: float = 60.0
) -> Service:
    data = workdir / "prometheus-data"
    shutil.rmtree(data, ignore_errors=True)
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--log.level=warn",
    ]
    service = spawn("prometheus", command, workdir, port)
    wait_until(service, lambda: http_ok(f"{service.url}/-/ready"), timeout)
    return service


def start_victoria_metrics(binary: str, workdir: Path, port: int) -> Service:
    data = workdir / "victoria-metrics-data"
    shutil.rmtree(data, ignore_errors=True)
    command = [
        binary,
        f"-httpListenAddr={LOOPBACK}:{port}",
        f"-storageDataPath={data}",
        "-retentionPeriod=1d",
        "-loggerLevel=WARN",
    ]
    service = spawn("victoria-metrics", command, workdir, port)
    wait_until(service, lambda: http_ok(f"{service.url}/health"), 60.0)
    return service


def start_vmagent(
    binary: str, file_sd: Path, interval: str, remote: str, workdir: Path, port: int
) -> Service:
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [{"job_name": "suanli", "file_sd_configs": [{"files": [str(file_sd)]}]}],
    }
    path = workdir / "vmagent.yml"
    path.write_text(json.dumps(config, indent=1))
    buffer = workdir / "vmagent-buffer"
    shutil.rmtree(buffer, ignore_errors=True)
    command = [
        binary,
        f"-promscrape.config={path}",
        f"-remoteWrite.url={remote}",
        f"-remoteWrite.tmpDataPath={buffer}",
        f"-httpListenAddr={LOOPBACK}:{port}",
        "-promscrape.fileSDCheckInterval=10s",
        "-loggerLevel=WARN",
    ]
    service = spawn("vmagent", command, workdir, port)
    wait_until(service, lambda: http_ok(f"{service.url}/health"), 60.0)
    return service


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
