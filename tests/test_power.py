"""CPU power from RAPL (monotonic across wraps, watts per interval) and node power by source."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.collectors.power import PowerCollector
from agent.hw.rapl import RaplReader, find_zones
from tests.gpu_helpers import node

FIXTURE = Path(__file__).parent / "fixtures" / "sys-hgx"
REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534


def unprivileged_python() -> str | None:
    """An interpreter user `nobody` may run (pyenv's often lives under /root)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        try:
            subprocess.run(
                [candidate, "-c", "pass"],
                user=NOBODY,
                group=NOBODY,
                check=True,
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        return candidate
    return None


PACKAGE_RANGE = 262143328850


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    root = tmp_path / "sys"
    shutil.copytree(FIXTURE, root)
    return root


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def set_energy(sysfs: Path, zone: str, microjoules: int) -> None:
    (sysfs / "class" / "powercap" / zone / "energy_uj").write_text(f"{microjoules}\n")


def values(collector: PowerCollector) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.spec.name, s.labels): s.value for s in collector.collect()}


def test_zones_are_packages_and_dram_per_socket_without_the_mmio_duplicate(sysfs: Path) -> None:
    zones = {(z.domain, z.socket) for z in find_zones(sysfs)}
    assert zones == {("package", "0"), ("dram", "0"), ("package", "1"), ("dram", "1")}


def test_a_register_wrap_keeps_the_counter_monotonic_and_the_watts_right(sysfs: Path) -> None:
    clock = Clock()
    collector = PowerCollector(RaplReader(str(sysfs), monotonic=clock), str(sysfs))
    first = values(collector)
    start = first[("suanli_cpu_energy_joules_total", ("package", "0"))]
    assert start == pytest.approx(240422.366267)
    assert ("suanli_cpu_power_watts", ("package", "0")) not in first, "no rate from one reading"
    # 5 s at 350 W on socket 0 crosses the end of the register: it wraps to a small value
    clock.t += 5.0
    wrapped = 240422366267 + 1750_000_000 - PACKAGE_RANGE
    set_energy(sysfs, "intel-rapl:0", wrapped)
    set_energy(sysfs, "intel-rapl:1", 131071664425 + 1500_000_000)
    set_energy(sysfs, "intel-rapl:0:1", 64503718402 + 150_000_000)
    set_energy(sysfs, "intel-rapl:1:1", 12009441003 + 140_000_000)
    second = values(collector)
    assert second[("suanli_cpu_energy_joules_total", ("package", "0"))] == pytest.approx(
        start + 1750
    )
    assert second[("suanli_cpu_power_watts", ("package", "0"))] == pytest.approx(350.0)
    assert second[("suanli_cpu_power_watts", ("package", "1"))] == pytest.approx(300.0)
    assert second[("suanli_node_power_watts", ("cpu",))] == pytest.approx(650.0)
    assert second[("suanli_node_power_watts", ("dram",))] == pytest.approx(58.0)
    assert second[("suanli_node_power_watts", ("meter",))] == pytest.approx(6843.0)


def test_without_powercap_or_meter_nothing_is_made_up(tmp_path: Path) -> None:
    collector = PowerCollector(RaplReader(str(tmp_path)), str(tmp_path))
    assert collector.collect() == []


def test_a_socket_that_cannot_be_read_leaves_the_node_total_out(sysfs: Path) -> None:
    clock = Clock()
    collector = PowerCollector(RaplReader(str(sysfs), monotonic=clock), str(sysfs))
    collector.collect()
    clock.t += 5.0
    (sysfs / "class" / "powercap" / "intel-rapl:1" / "energy_uj").unlink()
    second = values(collector)
    assert ("suanli_cpu_power_watts", ("package", "0")) in second
    assert ("suanli_node_power_watts", ("cpu",)) not in second, "half a node is not the node"


@pytest.fixture
def world_readable_tree() -> Iterator[Path]:
    """A copy of the fixture an unprivileged user can walk, with root-only energy files."""
    root = Path(tempfile.mkdtemp(prefix="suanli-rapl-"))
    try:
        shutil.copytree(FIXTURE, root / "sys")
        shutil.copytree(
            REPO / "agent", root / "agent", ignore=shutil.ignore_patterns("__pycache__")
        )
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        for energy in root.rglob("energy_uj"):
            energy.chmod(stat.S_IRUSR)  # as on kernels since 5.10
        yield root / "sys"
    finally:
        shutil.rmtree(root)


PROBE = """
import logging, sys
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from agent.collectors.power import PowerCollector
from agent.hw.rapl import RaplReader
collector = PowerCollector(RaplReader(sys.argv[1]), sys.argv[1])
for _ in range(3):
    print(sorted(s.spec.name + str(s.labels) for s in collector.collect()))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the probe as an unprivileged user")
def test_root_only_rapl_files_give_no_series_and_one_warning(world_readable_tree: Path) -> None:
    python = unprivileged_python()
    if python is None:
        pytest.skip("no Python interpreter that user nobody may run")
    probe = subprocess.run(
        [python, "-c", PROBE, str(world_readable_tree)],
        user=NOBODY,
        group=NOBODY,
        cwd=world_readable_tree.parent,
        env={"PYTHONPATH": str(world_readable_tree.parent), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    only_meter = "[\"suanli_node_power_watts('meter',)\"]"
    assert probe.stdout.splitlines() == [only_meter] * 3
    warnings = [line for line in probe.stderr.splitlines() if "RAPL" in line]
    assert len(warnings) == 1 and "root only" in warnings[0] and "udev" in warnings[0]


def test_gpu_power_is_the_node_total_of_gpus(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    series = node("h100-8", xid_events=False).at(60.0)
    gpu_watts = sum(v for (n, _), v in series.items() if n == "suanli_gpu_power_watts")
    assert series[("suanli_node_power_watts", ("gpu",))] == pytest.approx(gpu_watts)
