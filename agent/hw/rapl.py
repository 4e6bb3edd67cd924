"""CPU and DRAM energy from Linux powercap (RAPL), and the platform power meter from hwmon.

RAPL's `energy_uj` is a register that wraps at `max_energy_range_uj`; `RaplReader` turns it into
a counter that only goes up. The files are readable by root only on current kernels (since the
PLATYPUS side channel, CVE-2020-8694): when they cannot be read the reader says so once, with
the fix, and returns nothing rather than 0.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MICRO = 1e-6
_PACKAGE = re.compile(r"^package-(\d+)$")
UNREADABLE_HINT = (
    "RAPL energy files are readable by root only; install deploy/udev/90-suanli-rapl.rules "
    "(gives the suanli group read access) or run the agent as root to get CPU power"
)


@dataclass(frozen=True)
class RaplZone:
    path: Path
    domain: str  # package or dram
    socket: str
    max_range_uj: int


@dataclass(frozen=True)
class EnergyReading:
    domain: str
    socket: str
    joules: float  # monotonic since the agent started reading, starting at the register value
    watts: float | None  # mean over the last interval; None on the first reading


def find_zones(sysfs: Path) -> list[RaplZone]:
    """Package zones and their DRAM subzones (the MMIO duplicates of packages are skipped)."""
    zones = []
    for package in sorted((sysfs / "class" / "powercap").glob("intel-rapl:[0-9]*")):
        if package.name.count(":") != 1:
            continue
        match = _PACKAGE.match(_read(package / "name"))
        if match is None:
            continue
        socket = match.group(1)
        zones.append(_zone(package, "package", socket))
        for sub in sorted(package.parent.glob(f"{package.name}:[0-9]*")):
            if _read(sub / "name") == "dram":
                zones.append(_zone(sub, "dram", socket))
    return [zone for zone in zones if zone.max_range_uj > 0]


def _zone(path: Path, domain: str, socket: str) -> RaplZone:
    try:
        max_range = int(_read(path / "max_energy_range_uj"))
    except ValueError:
        max_range = 0
    return RaplZone(path, domain, socket, max_range)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


class RaplReader:
    """Monotonic joules and mean watts per RAPL zone, from a sysfs root (default `/sys`)."""

    def __init__(self, sysfs: str = "/sys", monotonic: Callable[[], float] = time.monotonic):
        self.zones = find_zones(Path(sysfs))
        self._monotonic = monotonic
        self._last: dict[Path, tuple[int, float, float]] = {}  # raw uJ, at, accumulated J
        self._warned = False

    def read(self) -> list[EnergyReading]:
        readings = []
        for zone in self.zones:
            try:
                raw = int((zone.path / "energy_uj").read_text())
            except PermissionError:
                self._warn_once(UNREADABLE_HINT)
                return []
            except (OSError, ValueError) as err:
                self._warn_once(f"cannot read RAPL energy of {zone.path.name}: {err}")
                continue
            readings.append(self._advance(zone, raw))
        return readings

    def _advance(self, zone: RaplZone, raw: int) -> EnergyReading:
        now = self._monotonic()
        last = self._last.get(zone.path)
        if last is None:
            joules, watts = raw * MICRO, None
        else:
            last_raw, at, joules = last
            delta = raw - last_raw if raw >= last_raw else raw + zone.max_range_uj - last_raw
            joules += delta * MICRO
            watts = delta * MICRO / (now - at) if now > at else None
        self._last[zone.path] = (raw, now, joules)
        return EnergyReading(zone.domain, zone.socket, joules, watts)

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("%s", message)


def find_power_meter(sysfs: str = "/sys") -> Path | None:
    """The hwmon folder of the platform power meter (ACPI `power_meter`); None without one.
    Looked up once: the meter does not come and go while the agent runs."""
    for hwmon in sorted((Path(sysfs) / "class" / "hwmon").glob("hwmon*")):
        if _read(hwmon / "name") == "power_meter":
            return hwmon
    return None


def power_meter_watts(meter: Path) -> float | None:
    """The meter's reading in watts; None while it has none."""
    for name in ("power1_average", "power1_input"):
        text = _read(meter / name)
        # ACPI meters read 0 until their first averaging interval (often 300 s) completes
        if text.isdigit() and int(text) > 0:
            return int(text) * MICRO
    return None
