"""InfiniBand / RoCE ports from sysfs: real trees (tests/fixtures/infiniband, see its README),
the default/detail split, absent values, trees that come and go, and the fake node's tree."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from agent.collectors.infiniband import (
    DEFAULT_COUNTERS,
    DEFAULT_SPECS,
    DETAIL_SPECS,
    InfinibandCollector,
    counters_read,
)
from agent.hw.infiniband import InfinibandReader, parse_rate, parse_state
from agent.metrics import Sample
from agent.sampler import Sampler
from suanli_sim.fake_infiniband import write_infiniband

FIXTURES = Path(__file__).parent / "fixtures" / "infiniband"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "sysfs" / "infiniband"
Series = dict[tuple[str, tuple[str, ...]], float]
UP = "suanli_infiniband_port_up"
RATE = "suanli_infiniband_port_rate_bytes_per_second"
DOWNED = "suanli_infiniband_link_downed_total"
RECEIVE = "suanli_infiniband_receive_errors_total"
BYTES = "suanli_infiniband_bytes_total"
ERRORS = "suanli_infiniband_errors_total"
MLX5_0 = ("mlx5_0", "1")


def sysfs(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    return root


def port_dir(root: Path, device: str, port: str = "1") -> Path:
    return root / "class" / "infiniband" / device / "ports" / port


def series(collector: InfinibandCollector) -> Series:
    samples: list[Sample] = collector.collect()
    found = {(s.spec.name, s.labels): s.value for s in samples}
    assert len(found) == len(samples), "duplicate series"
    return found


def of(found: Series, name: str) -> dict[tuple[str, ...], float]:
    return {labels: value for (n, labels), value in found.items() if n == name}


def test_real_ndr_ports_in_base_units(tmp_path: Path) -> None:
    found = series(InfinibandCollector(InfinibandReader(str(sysfs(tmp_path, "h100-ndr-roce")))))
    assert of(found, UP) == {MLX5_0: 1, ("mlx5_1", "1"): 1, ("mlx5_bond_0", "1"): 1}
    assert of(found, RATE) == {MLX5_0: 5e10, ("mlx5_1", "1"): 5e10, ("mlx5_bond_0", "1"): 2.5e10}
    assert of(found, DOWNED) == {MLX5_0: 0, ("mlx5_1", "1"): 255, ("mlx5_bond_0", "1"): 0}
    assert of(found, RECEIVE)[MLX5_0] == 14  # symbol_error 0 + port_rcv_errors 14
    assert len(found) == 4 * 3, "four series per port by default"
    assert {name for name, _ in found} == {spec.name for spec in DEFAULT_SPECS}


def test_detail_adds_bytes_errors_waits_and_the_port_strings(tmp_path: Path) -> None:
    root = sysfs(tmp_path, "h100-ndr-roce")
    collector = InfinibandCollector(InfinibandReader(str(root)), detail=True)
    assert [s.name for s in collector.specs()] == [s.name for s in (*DEFAULT_SPECS, *DETAIL_SPECS)]
    found = series(collector)
    assert of(found, BYTES)[(*MLX5_0, "tx")] == 230442669431839 * 4  # words -> bytes
    assert of(found, BYTES)[(*MLX5_0, "rx")] == 230539874932483 * 4
    errors = of(found, ERRORS)
    assert errors[(*MLX5_0, "excessive_buffer_overrun_errors")] == 15
    assert errors[(*MLX5_0, "port_rcv_switch_relay_errors")] == 1
    assert errors[(*MLX5_0, "out_of_buffer")] == 0  # hw_counters
    assert of(found, "suanli_infiniband_xmit_wait_total")[MLX5_0] == 2489603687
    info = of(found, "suanli_infiniband_port_info")
    strings = ("ACTIVE", "LinkUp", "InfiniBand", "MT4129", "28.41.1000", "MT_0000000838")
    assert (*MLX5_0, *strings) in info
    bond = next(labels[:6] for labels in info if labels[0] == "mlx5_bond_0")
    assert bond == ("mlx5_bond_0", "1", "ACTIVE", "LinkUp", "Ethernet", "MT41692")  # RoCE


def test_a_default_reader_reads_only_the_counters_the_default_metrics_need(
    tmp_path: Path,
) -> None:
    root = sysfs(tmp_path, "h100-ndr-roce")
    everything = InfinibandReader(str(root)).read()
    reader = InfinibandReader(str(root), counters_read(detail=False))
    readings = reader.read()
    assert {name for r in readings for name in r.counters} == set(DEFAULT_COUNTERS)
    assert [r.counters for r in readings] == [
        {k: v for k, v in r.counters.items() if k in DEFAULT_COUNTERS} for r in everything
    ]
    default = series(InfinibandCollector(reader))
    assert default == series(InfinibandCollector(InfinibandReader(str(root))))


def test_default_collector_declares_and_exports_no_detail(tmp_path: Path) -> None:
    collector = InfinibandCollector(InfinibandReader(str(sysfs(tmp_path, "h100-ndr-roce"))))
    assert not any(spec.detail for spec in collector.specs())
    assert all(spec.detail for spec in DETAIL_SPECS)
    assert not [name for name, _ in series(collector) if name in {s.name for s in DETAIL_SPECS}]


def test_counters_without_a_value_are_absent_never_zero(tmp_path: Path) -> None:
    """i40iw0 reads "N/A (no PMA)" everywhere; mlx4_0 port 2 has no error counters."""
    collector = InfinibandCollector(InfinibandReader(str(sysfs(tmp_path, "mixed"))), detail=True)
    found = series(collector)
    i40iw = ("i40iw0", "1")
    assert of(found, UP)[i40iw] == 1 and of(found, RATE)[i40iw] == 1.25e9  # 10 Gb/sec (4X)
    assert {n for (n, labels) in found if labels[:2] == i40iw} == {
        UP,
        RATE,
        "suanli_infiniband_port_info",
    }
    assert i40iw not in of(found, DOWNED) and i40iw not in of(found, RECEIVE)
    assert ("mlx4_0", "2") not in of(found, RECEIVE)
    assert of(found, RECEIVE)[("mlx4_0", "1")] == 0  # port_rcv_errors only: no symbol_error
    # mlx4: the 64-bit counters_ext copy wins over the 32-bit counters/ file
    assert of(found, BYTES)[("mlx4_0", "2", "tx")] == 3733440 * 4


def test_a_port_that_is_not_active_and_linkup_is_down(tmp_path: Path) -> None:
    root = sysfs(tmp_path, "h100-ndr-roce")
    (port_dir(root, "mlx5_0") / "state").write_text("1: DOWN\n")
    (port_dir(root, "mlx5_0") / "phys_state").write_text("2: Polling\n")
    (port_dir(root, "mlx5_1") / "phys_state").write_text("6: LinkErrorRecovery\n")
    found = series(InfinibandCollector(InfinibandReader(str(root))))
    assert of(found, UP) == {MLX5_0: 0, ("mlx5_1", "1"): 0, ("mlx5_bond_0", "1"): 1}
    assert of(found, DOWNED)[MLX5_0] == 0, "a down port keeps its counters"


def test_a_port_without_counters_still_reports_its_state(tmp_path: Path) -> None:
    root = sysfs(tmp_path, "h100-ndr-roce")
    shutil.rmtree(port_dir(root, "mlx5_0") / "counters")
    shutil.rmtree(port_dir(root, "mlx5_0") / "hw_counters")
    found = series(InfinibandCollector(InfinibandReader(str(root)), detail=True))
    assert of(found, UP)[MLX5_0] == 1 and of(found, RATE)[MLX5_0] == 5e10
    assert MLX5_0 not in of(found, DOWNED) and MLX5_0 not in of(found, RECEIVE)
    assert not [labels for labels in of(found, ERRORS) if labels[:2] == MLX5_0]


def test_an_unreadable_counter_is_absent_and_warned_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A directory in place of the file: unreadable even for root (EISDIR)."""
    root = sysfs(tmp_path, "h100-ndr-roce")
    collector = InfinibandCollector(InfinibandReader(str(root)))
    assert of(series(collector), RECEIVE)[MLX5_0] == 14
    errors = port_dir(root, "mlx5_0") / "counters" / "port_rcv_errors"
    errors.unlink()
    errors.mkdir()
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        found = series(collector)
        assert MLX5_0 not in of(found, RECEIVE), "symbol_error alone would look like a reset"
        assert of(found, DOWNED)[MLX5_0] == 0 and of(found, RECEIVE)[("mlx5_1", "1")] == 14
    warnings = [r.getMessage() for r in caplog.records if "mlx5_0/1" in r.getMessage()]
    assert len(warnings) == 1 and "port_rcv_errors" in warnings[0]


def test_a_tree_that_appears_or_changes_after_start_is_picked_up(tmp_path: Path) -> None:
    collector = InfinibandCollector(InfinibandReader(str(tmp_path)))
    assert collector.collect() == [], "no class/infiniband: no IB on this node, nothing made up"
    shutil.copytree(FIXTURES / "h100-ndr-roce", tmp_path, dirs_exist_ok=True)
    assert len(of(series(collector), UP)) == 3
    shutil.rmtree(tmp_path / "class" / "infiniband" / "mlx5_1")
    assert set(of(series(collector), UP)) == {MLX5_0, ("mlx5_bond_0", "1")}


def test_ports_are_discovered_once_while_the_devices_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = InfinibandReader(str(sysfs(tmp_path, "h100-ndr-roce")))
    calls: list[str] = []
    discover = reader._discover
    monkeypatch.setattr(reader, "_discover", lambda d: calls.append(d) or discover(d))
    for _ in range(5):
        assert len(reader.read()) == 3
    assert calls == ["mlx5_0", "mlx5_1", "mlx5_bond_0"]


def test_an_unlistable_tree_fails_this_collector_alone(tmp_path: Path) -> None:
    """class/infiniband exists but cannot be listed: the collector raises (reported as
    suanli_collector_success{collector="infiniband"} 0) rather than look like a node without IB."""
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "infiniband").write_text("not a folder")
    failing = InfinibandCollector(InfinibandReader(str(tmp_path)))
    working = InfinibandCollector(InfinibandReader(str(sysfs(tmp_path, "h100-ndr-roce"))))
    working.name = "other"
    with pytest.raises(OSError):
        failing.collect()
    snapshot = Sampler([failing, working], interval=5.0, inline=True).sample_once()
    results = {r.name: r for r in snapshot.results}
    assert not results["infiniband"].success and "NotADirectoryError" in str(
        results["infiniband"].error
    )
    assert results["other"].success and len(results["other"].samples) == 12


@pytest.mark.parametrize(
    ("text", "bytes_per_second"),
    [
        ("400 Gb/sec (4X NDR)", 5e10),
        ("200 Gb/sec (2X NDR)", 2.5e10),
        ("2.5 Gb/sec (1X SDR)", 3.125e8),
        ("10 Gb/sec (4X)", 1.25e9),
        ("", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_rates(text: str | None, bytes_per_second: float | None) -> None:
    assert parse_rate(text) == bytes_per_second


def test_states() -> None:
    assert parse_state("4: ACTIVE") == "ACTIVE" and parse_state("5: LinkUp") == "LinkUp"
    assert parse_state("") is None and parse_state(None) is None


def fake_series(root: Path, t: float, down: frozenset[int] = frozenset()) -> Series:
    write_infiniband(str(root), ports=8, t=t, seed=11, down=down)
    return series(InfinibandCollector(InfinibandReader(str(root)), detail=True))


def test_the_fake_tree_is_deterministic_grows_with_time_and_stays_in_budget(
    tmp_path: Path,
) -> None:
    first = fake_series(tmp_path / "a", 600.0)
    assert first == fake_series(tmp_path / "b", 600.0), "same seed and time, same tree"
    later = fake_series(tmp_path / "a", 660.0)
    for (name, labels), value in first.items():
        if name.endswith("_total"):
            assert later[(name, labels)] >= value, (name, labels)
    for direction in ("tx", "rx"):
        key = (BYTES, (*MLX5_0, direction))
        per_second = (later[key] - first[key]) / 60
        assert 4e9 <= per_second <= 2.1e10, "a busy NDR rail, below its 5e10 line rate"
    assert set(of(later, UP).values()) == {1} and set(of(later, RATE).values()) == {5e10}
    default = [k for k in later if k[0] in {s.name for s in DEFAULT_SPECS}]
    assert len(default) == 8 * 4, "4 series per port by default: 32 on an 8-rail node"


def test_a_fake_port_down_is_down_with_one_link_down_and_still_counters(tmp_path: Path) -> None:
    before = fake_series(tmp_path, 100.0, down=frozenset({3}))
    after = fake_series(tmp_path, 200.0, down=frozenset({3}))
    port = ("mlx5_3", "1")
    assert of(after, UP)[port] == 0 and of(after, DOWNED)[port] == 1
    assert of(after, BYTES)[(*port, "tx")] == of(before, BYTES)[(*port, "tx")]
    assert sum(of(after, UP).values()) == 7


def test_a_flaky_fake_port_flaps_retrains_at_half_width_and_counts_errors(
    tmp_path: Path,
) -> None:
    def at(t: float) -> Series:
        write_infiniband(str(tmp_path), ports=2, t=t, seed=3, flaky={1})
        return series(InfinibandCollector(InfinibandReader(str(tmp_path))))

    port = ("mlx5_1", "1")
    before, after, later = at(29.0), at(31.0), at(151.0)
    assert of(before, RATE)[port] == 5e10 and of(before, DOWNED)[port] == 0
    assert of(after, RATE)[port] == 2.5e10 and of(after, UP)[port] == 1
    assert of(after, DOWNED)[port] == 1 and of(later, DOWNED)[port] == 3  # at 30, 90, 150 s
    assert of(later, RECEIVE)[port] == 75 + 30  # every 2 s, plus a symbol error every 5 s
    assert of(later, RECEIVE)[MLX5_0] == 0 and of(later, RATE)[MLX5_0] == 5e10


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference not beside the checkout")
def test_the_fake_tree_has_the_layout_of_the_real_one(tmp_path: Path) -> None:
    write_infiniband(str(tmp_path), ports=1, t=0.0, seed=1)
    fake = tmp_path / "class" / "infiniband" / "mlx5_0"
    real = REFERENCE / "h100-ndr-roce__gpud" / "mlx5_0"
    names = {p.relative_to(fake) for p in fake.rglob("*") if p.is_file()}
    assert names <= {p.relative_to(real) for p in real.rglob("*") if p.is_file()}
    for name in ("ports/1/rate", "ports/1/state", "ports/1/phys_state", "hca_type", "fw_ver"):
        assert (fake / name).read_text().strip() == (real / name).read_text().strip(), name
    assert not list(tmp_path.rglob("*.tmp")), "no temporary file left behind"
