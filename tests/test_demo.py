"""deploy/demo/demo.py: a simulated center plus a real Prometheus on loopback, for a laptop."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import pick_free_port

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "deploy" / "demo" / "demo.py"


def demo_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("suanli_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grafana_gets_the_shipped_dashboards_and_this_prometheus(tmp_path: Path) -> None:
    demo = demo_module()
    root = demo.grafana_provisioning(tmp_path / "prov", "http://127.0.0.1:19090", "5s")
    source = yaml.safe_load((root / "datasources" / "suanli.yaml").read_text())["datasources"][0]
    assert source["url"] == "http://127.0.0.1:19090"
    assert source["jsonData"]["timeInterval"] == "5s"  # $__rate_interval follows the scrape
    provider = yaml.safe_load((root / "dashboards" / "suanli.yaml").read_text())["providers"][0]
    assert Path(provider["options"]["path"]) == ROOT / "grafana" / "dashboards"
    assert sorted(Path(provider["options"]["path"]).glob("suanli-*.json"))
    ini = demo.grafana_ini(tmp_path, root, 13000).read_text()
    assert "http_addr = 127.0.0.1" in ini and "http_port = 13000" in ini


def query(url: str, expr: str) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=5) as answer:
        result: list[dict[str, Any]] = json.load(answer)["data"]["result"]
    return result


def wait_for(url: str, expr: str, check: Any, timeout: float) -> list[dict[str, Any]]:
    deadline, found = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        try:
            found = query(url, expr)
        except OSError:
            found = []
        if check(found):
            return found
        time.sleep(0.5)
    raise AssertionError(f"{expr}: {found} after {timeout:.0f}s")


def free_port_range(count: int) -> int:
    """A base port with `count` free ports from it (bound and released, so not a promise)."""
    for base in range(pick_free_port() % 20000 + 30000, 65000 - count, count):
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    probe = stack.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise AssertionError(f"no {count} consecutive free ports")


@pytest.mark.usefixtures("prometheus_bin")  # skips, or fails in CI, without Prometheus
def test_demo_serves_a_center_that_prometheus_scrapes_and_rolls_up() -> None:
    nodes, prometheus_port = 8, pick_free_port()
    command = [sys.executable, str(DEMO), "--nodes", str(nodes), "--interval", "1s"]
    command += ["--base-port", str(free_port_range(nodes)), "--no-grafana"]
    command += ["--prometheus-port", str(prometheus_port), "--duration", "90"]
    demo = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert demo.stdout is not None
        banner = "".join(demo.stdout.readline() for _ in range(4))
        assert "Prometheus: http://127.0.0.1:" in banner, banner
        url = f"http://127.0.0.1:{prometheus_port}"
        wait_for(url, 'up{job="suanli"} == 1', lambda found: len(found) == nodes, 30)
        every_gpu = "sum(cluster_hall:suanli_gpus:count) == scalar(count(suanli_gpu_up))"
        rolled_up = wait_for(url, every_gpu, bool, 30)  # the halls' rollups count every GPU
        assert float(rolled_up[0]["value"][1]) >= nodes
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(20) == 0
    finally:
        if demo.poll() is None:  # a failed assertion: SIGTERM, so the demo stops its children
            demo.terminate()
            try:
                demo.wait(20)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()


def test_demo_without_prometheus_says_so_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO), "--nodes", "2"],
        env={"PATH": str(tmp_path)},  # no prometheus on this PATH
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "demo: prometheus is not installed (Debian: apt-get install prometheus)"
    )
