#!/usr/bin/env python3
"""A simulated center on this machine: the fleet simulator, Prometheus and (if installed) Grafana.

    python3 deploy/demo/demo.py                 # 40 nodes; Ctrl-C stops everything
    python3 deploy/demo/demo.py --nodes 200 --prometheus-port 19090

Everything listens on 127.0.0.1 only. Prometheus loads the project's recording rules and alerts
from deploy/prometheus/rules/; Grafana, when a `grafana` or `grafana-server` binary is on PATH,
gets the project's dashboards and a datasource pointing at this Prometheus, with anonymous
viewer access. Files go to --workdir (a temporary directory by default, removed at exit).
Exit status: 0 after Ctrl-C, SIGTERM or --duration; 1 when a part dies; 2 for a missing part.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules"
DASHBOARDS = REPO / "grafana" / "dashboards"
LOOPBACK = "127.0.0.1"
GRAFANA_HOMES = (Path("/usr/share/grafana"), Path("/usr/local/share/grafana"))


class DemoError(Exception):
    """A part died or did not answer: one line for the user."""

    exit_code = 1


class MissingPart(DemoError):
    """A program the demo needs is not installed."""

    exit_code = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--nodes", type=int, default=40, help="simulated nodes (40)")
    p.add_argument("--base-port", type=int, default=21000, help="node i on BASE+i (21000)")
    p.add_argument("--interval", default="5s", help="sampling and scrape interval (5s)")
    p.add_argument("--prometheus-port", type=int, default=9090)
    p.add_argument("--grafana-port", type=int, default=3000)
    p.add_argument("--no-grafana", action="store_true", help="do not start Grafana")
    p.add_argument("--workdir", type=Path, help="keep files here (default: a temporary dir)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after N s (0: run on)")
    return p.parse_args(argv)


def prometheus_config(targets: Path, interval: str) -> str:
    """The shipped shard config's essentials, for one loopback server without sharding."""
    return f"""# Written by deploy/demo/demo.py
global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
rule_files:
  - {RULES / "suanli-recording.yml"}
  - {RULES / "suanli-alerts.yml"}
scrape_configs:
  - job_name: suanli
    file_sd_configs:
      - files: [{targets}]
"""


def grafana_provisioning(root: Path, prometheus_url: str, interval: str) -> Path:
    """Datasource and dashboard provider files, as grafana/provisioning/ ships them, adjusted."""
    datasource = root / "datasources" / "suanli.yaml"
    source = (REPO / "grafana" / "provisioning" / "datasources" / "suanli.yaml").read_text()
    source = source.replace("url: http://prometheus:9090", f"url: {prometheus_url}")
    datasource.parent.mkdir(parents=True, exist_ok=True)
    datasource.write_text(source.replace("timeInterval: 15s", f"timeInterval: {interval}"))
    provider = root / "dashboards" / "suanli.yaml"
    source = (REPO / "grafana" / "provisioning" / "dashboards" / "suanli.yaml").read_text()
    provider.parent.mkdir(parents=True, exist_ok=True)
    provider.write_text(source.replace("/var/lib/grafana/dashboards/suanli", str(DASHBOARDS)))
    for kind in ("plugins", "alerting", "notifiers"):
        (root / kind).mkdir(exist_ok=True)
    return root


def grafana_ini(workdir: Path, provisioning: Path, port: int) -> Path:
    ini = workdir / "grafana.ini"
    ini.write_text(
        f"""[server]
http_addr = {LOOPBACK}
http_port = {port}
[paths]
data = {workdir / "grafana-data"}
logs = {workdir / "grafana-logs"}
plugins = {workdir / "grafana-plugins"}
provisioning = {provisioning}
[auth.anonymous]
enabled = true
org_role = Viewer
[analytics]
reporting_enabled = false
check_for_updates = false
[dashboards]
default_home_dashboard_path = {DASHBOARDS / "suanli-center.json"}
"""
    )
    return ini


def grafana_command(ini: Path) -> list[str] | None:
    """`grafana server` (Grafana 10+) or the older `grafana-server`; None when not installed."""
    home = next((h for h in GRAFANA_HOMES if (h / "conf" / "defaults.ini").exists()), None)
    home_args = ["--homepath", str(home)] if home is not None else []
    if (binary := shutil.which("grafana")) is not None:
        return [binary, "server", *home_args, "--config", str(ini)]
    if (binary := shutil.which("grafana-server")) is not None:
        return [binary, *home_args, "--config", str(ini)]
    return None


class Parts:
    """The child processes, each logging to a file in the workdir; all stopped together."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.running[name] = subprocess.Popen(
            command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )

    def check(self) -> None:
        for name, proc in self.running.items():
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-600:]
                raise DemoError(f"{name} exited with {proc.returncode}: {tail.strip()}")

    def stop(self) -> None:
        for proc in reversed(list(self.running.values())):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.running.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_http(parts: Parts, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts.check()
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.3)
    raise DemoError(f"{url} did not answer within {timeout:.0f}s")


def start_center(args: argparse.Namespace, parts: Parts) -> str:
    """The simulator and Prometheus; returns Prometheus' URL once both answer."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        raise MissingPart("prometheus is not installed (Debian: apt-get install prometheus)")
    targets = parts.workdir / "targets.json"
    simulate = [sys.executable, "-m", "agent", "simulate", "--nodes", str(args.nodes)]
    simulate += ["--base-port", str(args.base_port), "--listen-address", LOOPBACK]
    simulate += ["--interval", args.interval, "--file-sd", str(targets)]
    parts.start("simulator", simulate)
    wait_http(parts, f"http://{LOOPBACK}:{args.base_port}/metrics")
    config = parts.workdir / "prometheus.yml"
    config.write_text(prometheus_config(targets, args.interval))
    url = f"http://{LOOPBACK}:{args.prometheus_port}"
    command = [prometheus, f"--config.file={config}", f"--storage.tsdb.path={parts.workdir}/tsdb"]
    parts.start("prometheus", [*command, f"--web.listen-address={LOOPBACK}:{args.prometheus_port}"])
    wait_http(parts, f"{url}/-/ready")
    return url


def start_grafana(args: argparse.Namespace, parts: Parts, prometheus_url: str) -> str | None:
    provisioning = grafana_provisioning(
        parts.workdir / "provisioning", prometheus_url, args.interval
    )
    command = grafana_command(grafana_ini(parts.workdir, provisioning, args.grafana_port))
    if args.no_grafana or command is None:
        return None
    parts.start("grafana", command)
    url = f"http://{LOOPBACK}:{args.grafana_port}"
    wait_http(parts, f"{url}/api/health", timeout=120.0)
    return url


def grafana_line(grafana_url: str | None, prometheus_url: str) -> str:
    if grafana_url is not None:
        return f"Grafana:    {grafana_url}/d/suanli-center"
    return (
        "Grafana:    not started: import grafana/dashboards/*.json into a Grafana with a"
        f" Prometheus datasource at {prometheus_url} (docs/dashboards.md)"
    )


@contextlib.contextmanager
def workdir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="suanli-demo-") as temporary:
        yield Path(temporary)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    with workdir(args.workdir) as where:
        parts = Parts(where)
        try:
            prometheus_url = start_center(args, parts)
            grafana_url = start_grafana(args, parts, prometheus_url)
            print(f"{args.nodes} simulated nodes on {LOOPBACK}:{args.base_port}+; files in {where}")
            print(f"Prometheus: {prometheus_url}/targets  (rules: {prometheus_url}/rules)")
            print(grafana_line(grafana_url, prometheus_url))
            print("Ctrl-C stops everything.", flush=True)
            deadline = time.monotonic() + args.duration if args.duration > 0 else None
            while deadline is None or time.monotonic() < deadline:
                parts.check()
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            parts.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    try:
        return run(args)
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
