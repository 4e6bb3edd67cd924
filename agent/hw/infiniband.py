"""InfiniBand and RoCE ports from sysfs: `<sysfs>/class/infiniband/<device>/ports/<n>/`.

Per port the kernel gives `state` ("4: ACTIVE"), `phys_state` ("5: LinkUp"), `rate`
("400 Gb/sec (4X NDR)"), `link_layer` (InfiniBand, or Ethernet for RoCE) and the port counters of
the IB specification in `counters/` (64-bit copies in `counters_ext/` on mlx4), plus vendor
counters in `hw_counters/`. `port_xmit_data` and `port_rcv_data` count 4-byte words; the reader
returns bytes. A counter whose file is missing, unreadable or reads "N/A (no PMA)" is absent,
never 0.

The device and port folders, and which counter files each port has, are discovered once and
again only when the list of devices changes (one listdir per cycle).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

WORD_BYTES = 4  # port_xmit_data / port_rcv_data count 32-bit words (IBA PortCounters)
ACTIVE = "ACTIVE"
LINK_UP = "LinkUp"
_RATE = re.compile(r"^\s*([0-9.]+)\s*([KMGT]?)b/sec")
_SCALE = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_COUNTER_DIRS = ("counters", "counters_ext", "hw_counters")
_DEVICE_INFO = ("hca_type", "fw_ver", "board_id")
# 64-bit counters_ext files that replace the counters/ file of the same meaning (mlx4).
_EXT_OF = {
    "port_xmit_data": "port_xmit_data_64",
    "port_rcv_data": "port_rcv_data_64",
}


@dataclass(frozen=True)
class PortFiles:
    """What discovery found for one port: its folder and its counter files by name."""

    device: str
    port: str
    path: Path
    counters: dict[str, Path]  # counter name -> file (counters_ext preferred for 64-bit copies)
    info: dict[str, str] = field(default_factory=dict)  # device-level: hca_type, fw_ver, board_id


@dataclass(frozen=True)
class PortReading:
    """One port in base units; None where the kernel gives no value."""

    device: str
    port: str
    state: str | None  # ACTIVE, DOWN, INIT, ARMED, ...
    phys_state: str | None  # LinkUp, Polling, Disabled, ...
    link_layer: str | None  # InfiniBand, Ethernet (RoCE)
    rate_bytes_per_second: float | None
    counters: dict[str, int]  # raw counts by sysfs name, readable ones only (data in words)
    unreadable: frozenset[str] = frozenset()  # counter files the port has that gave no value
    info: dict[str, str] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        return self.state == ACTIVE and self.phys_state == LINK_UP

    @property
    def tx_bytes(self) -> int | None:
        words = self.counters.get("port_xmit_data")
        return None if words is None else words * WORD_BYTES

    @property
    def rx_bytes(self) -> int | None:
        words = self.counters.get("port_rcv_data")
        return None if words is None else words * WORD_BYTES


def parse_state(text: str | None) -> str | None:
    """State name: `4: ACTIVE` -> `ACTIVE`, `5: LinkUp` -> `LinkUp`; None or blank -> None."""
    if not text:
        return None
    name = text.split(":", 1)[-1].strip()
    return name or None


def parse_rate(text: str | None) -> float | None:
    """Bytes per second: `400 Gb/sec (4X NDR)` -> 5e10; None when it does not parse."""
    match = _RATE.match(text or "")
    if match is None:
        return None
    try:
        bits = float(match.group(1)) * _SCALE[match.group(2)]
    except ValueError:
        return None
    return bits / 8


def parse_counter(text: str | None) -> int | None:
    """A counter file's text as an int; None for "N/A (no PMA)", blanks and garbage."""
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() else None


class InfinibandReader:
    """Readings of every port under `<sysfs_root>/class/infiniband`."""

    def __init__(self, sysfs_root: str = "/sys", counters: Collection[str] | None = None) -> None:
        """`counters`: the counter files to read each cycle (None: every one the port has).
        Each file read is a few system calls that each give up the interpreter lock, so a
        default cycle reads only what the default metrics need."""
        self.root = Path(sysfs_root) / "class" / "infiniband"
        self._wanted = None if counters is None else frozenset(counters)
        self._devices: tuple[str, ...] | None = None
        self.ports: list[PortFiles] = []
        self._warned: set[str] = set()

    def read(self) -> list[PortReading]:
        """This cycle's readings. No `class/infiniband` folder: no ports (and a folder that
        appears later is picked up). A folder that exists but cannot be listed raises OSError,
        so the collector reports failure instead of an empty, healthy-looking node."""
        try:
            devices = tuple(sorted(os.listdir(self.root)))
        except FileNotFoundError:
            devices = ()
        if devices != self._devices:
            self.ports = [port for device in devices for port in self._discover(device)]
            self._devices = devices
        return [self._read_port(files) for files in self.ports]

    def _discover(self, device: str) -> list[PortFiles]:
        base = self.root / device
        info = {key: text for key in _DEVICE_INFO if (text := _read(base / key)) is not None}
        try:
            ports = sorted(os.listdir(base / "ports"), key=_port_key)
        except FileNotFoundError:
            return []  # the device went away between the two listings
        except OSError as err:
            self._warn(f"{device}/ports", f"cannot list the ports of {device}: {err}")
            return []
        paths = [(port, base / "ports" / port) for port in ports]
        return [
            PortFiles(device, port, path, _counters(path, self._wanted), info)
            for port, path in paths
        ]

    def _read_port(self, files: PortFiles) -> PortReading:
        counters: dict[str, int] = {}
        unreadable = set()
        for name, path in files.counters.items():
            value = parse_counter(self._read_counter(files, path))
            if value is None:
                unreadable.add(name)
            else:
                counters[name] = value
        return PortReading(
            device=files.device,
            port=files.port,
            state=parse_state(_read(files.path / "state")),
            phys_state=parse_state(_read(files.path / "phys_state")),
            link_layer=None if self._wanted is not None else _read(files.path / "link_layer"),
            rate_bytes_per_second=parse_rate(_read(files.path / "rate")),
            counters=counters,
            unreadable=frozenset(unreadable),
            info=files.info,
        )

    def _read_counter(self, files: PortFiles, path: Path) -> str | None:
        try:
            return path.read_text()
        except FileNotFoundError:
            return None  # the port went away with its device; rediscovered next cycle
        except OSError as err:  # EACCES, or EINVAL/EIO from a port without a PMA
            key = f"{files.device}/{files.port}"
            self._warn(key, f"cannot read InfiniBand counters of {key} ({path.name}): {err}")
            return None

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)


def _counters(port: Path, wanted: frozenset[str] | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in _COUNTER_DIRS:
        try:
            names = os.listdir(port / folder)
        except OSError:
            continue  # a port without counters still reports its state
        for name in names:
            found.setdefault(name, port / folder / name)
    for name, ext in _EXT_OF.items():
        if ext in found:
            found[name] = found.pop(ext)
    return found if wanted is None else {k: v for k, v in found.items() if k in wanted}


def _port_key(name: str) -> tuple[int, str]:
    return (int(name), name) if name.isdigit() else (1 << 30, name)


def _read(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text or None
