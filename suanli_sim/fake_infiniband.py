"""A simulated `/sys/class/infiniband` tree for the fake node, modelled on a real HGX H100 with
ConnectX-7 NDR adapters (../shared/reference/sysfs/infiniband/h100-ndr-roce__gpud).

`write_infiniband(root, ports, t, seed)` writes `<root>/class/infiniband/mlx5_<i>/ports/1/...`
as the kernel shows it at simulated time `t` (seconds): every value is a function of (seed, i, t),
so counters grow with `t`, two calls with the same arguments write the same tree, and a later
`t` never gives a smaller counter. Ports in `down` are cabled but down since before `t=0`: state
DOWN, physical state Polling, one link down, and counters that no longer move. Ports in `flaky`
have a marginal cable: a receive error every 2 s and a symbol error every 5 s, a link down and
back at `t=30 s` and every 60 s after, and from the first flap on they run retrained at half
width (`200 Gb/sec (2X NDR)`). Each file is replaced atomically, so an agent reading while the
tree is rewritten never sees half a file.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Collection
from pathlib import Path

from agent.hw.infiniband import InfinibandReader, PortReading
from suanli_sim.fake_scenario import InfinibandSpec

UP_LINK = ("4: ACTIVE", "5: LinkUp", "400 Gb/sec (4X NDR)")
DOWN_LINK = ("1: DOWN", "2: Polling", "10 Gb/sec (4X SDR)")  # no link partner: lowest rate
DEGRADED_LINK = ("4: ACTIVE", "5: LinkUp", "200 Gb/sec (2X NDR)")
FIRST_FLAP_S = 30.0
FLAP_PERIOD_S = 60.0
FLAKY_ERROR_PERIOD_S = 2.0
FLAKY_SYMBOL_PERIOD_S = 5.0
MTU_BYTES = 4096
WORD_BYTES = 4
# Counters of the reference port that stay 0 on a healthy NDR port.
QUIET_COUNTERS = (
    "VL15_dropped",
    "link_error_recovery",
    "local_link_integrity_errors",
    "multicast_rcv_packets",
    "multicast_xmit_packets",
    "port_rcv_constraint_errors",
    "port_rcv_remote_physical_errors",
    "port_xmit_constraint_errors",
    "port_xmit_discards",
)
HW_COUNTERS = ("out_of_buffer", "out_of_sequence", "packet_seq_err", "local_ack_timeout_err")
DEVICE_FILES = {"board_id": "MT_0000000838", "fw_ver": "28.41.1000", "hca_type": "MT4129"}


def write_infiniband(
    root: str,
    ports: int,
    t: float,
    seed: int,
    down: Collection[int] = frozenset(),
    flaky: Collection[int] = frozenset(),
    writer: _Writer | None = None,
    counters: Collection[str] | None = None,
) -> None:
    """Write `ports` single-port NDR devices mlx5_0 .. mlx5_<ports-1> under `<root>/class/`;
    `down` and `flaky` hold port indexes (a port in both is down). A `writer` kept from an
    earlier call rewrites only the files whose text changed, and after its first tree only the
    `counters` named (None: all) of the counter files: the others nobody reads."""
    writer = writer or _Writer(Path(root))
    wanted = None if writer.fresh else counters
    for index in range(ports):
        device = writer.root / "class" / "infiniband" / f"mlx5_{index}"
        for name, text in DEVICE_FILES.items():
            writer.write(device / name, text)
        port = _Port(seed, index, index in down, index in flaky)
        _write_port(writer, device / "ports" / "1", port, max(t, 0.0), wanted)


class _Port:
    """The fixed character of one simulated port, drawn from (seed, index)."""

    def __init__(self, seed: int, index: int, down: bool, flaky: bool) -> None:
        draw = random.Random(seed * 1_000_003 + index)
        self.down = down
        self.flaky = flaky and not down
        self.tx_bytes_per_s = draw.uniform(4e9, 2.0e10)  # a busy training job: 8-40% of NDR
        self.rx_bytes_per_s = self.tx_bytes_per_s * draw.uniform(0.95, 1.05)
        self.start_words = draw.randrange(10**12, 10**14)  # traffic since the driver loaded
        # a healthy fabric: most ports see no receive errors, a few one an hour (0: none)
        self.error_period_s = draw.choice((0.0, 0.0, 0.0, 3600.0))
        self.overruns = draw.randrange(0, 20)

    def words(self, rate: float, t: float) -> int:
        moving = 0.0 if self.down else t
        return self.start_words + int(rate * moving / WORD_BYTES)

    def flaps(self, t: float) -> int:
        """Link downs by time `t`: a down port went down once, a flaky one keeps flapping."""
        if self.down:
            return 1
        if not self.flaky or t < FIRST_FLAP_S:
            return 0
        return 1 + int((t - FIRST_FLAP_S) // FLAP_PERIOD_S)

    def link(self, t: float) -> tuple[str, str, str]:
        if self.down:
            return DOWN_LINK
        return DEGRADED_LINK if self.flaps(t) else UP_LINK

    def receive_errors(self, t: float) -> int:
        if self.down:
            return 0
        if self.flaky:
            return int(t // FLAKY_ERROR_PERIOD_S)
        return int(t // self.error_period_s) if self.error_period_s else 0


def _write_port(
    writer: _Writer, path: Path, port: _Port, t: float, wanted: Collection[str] | None
) -> None:
    for name, text in zip(("state", "phys_state", "rate"), port.link(t), strict=True):
        writer.write(path / name, text)
    writer.write(path / "link_layer", "InfiniBand")
    for name, value in _counters(port, t).items():
        if wanted is None or name in wanted:
            writer.write(path / "counters" / name, str(value))
    for name in HW_COUNTERS:
        writer.write(path / "hw_counters" / name, "0")


def _counters(port: _Port, t: float) -> dict[str, int]:
    tx_words = port.words(port.tx_bytes_per_s, t)
    rx_words = port.words(port.rx_bytes_per_s, t)
    counters = dict.fromkeys(QUIET_COUNTERS, 0)
    counters |= {
        "port_xmit_data": tx_words,
        "port_rcv_data": rx_words,
        "port_xmit_packets": tx_words * WORD_BYTES // MTU_BYTES,
        "port_rcv_packets": rx_words * WORD_BYTES // MTU_BYTES,
        "unicast_xmit_packets": tx_words * WORD_BYTES // MTU_BYTES,
        "unicast_rcv_packets": rx_words * WORD_BYTES // MTU_BYTES,
        "port_xmit_wait": tx_words // 100_000,
        "port_rcv_errors": port.receive_errors(t),
        "symbol_error": int(t // FLAKY_SYMBOL_PERIOD_S) if port.flaky else 0,
        "port_rcv_switch_relay_errors": 1,
        "excessive_buffer_overrun_errors": port.overruns,
        "link_downed": port.flaps(t),
    }
    return counters


class _Writer:
    """Replaces files atomically: written beside `root/class` (so no listing under it ever shows
    a temporary file), then renamed over the target, as sysfs files never tear."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.temporary = root / f".fake-infiniband-{os.getpid()}-{threading.get_ident()}.tmp"
        self._written: dict[Path, str] = {}  # what this writer last wrote, to skip rewrites

    @property
    def fresh(self) -> bool:
        """Nothing written yet: the first tree is written whole."""
        return not self._written

    def write(self, path: Path, text: str) -> None:
        if self._written.get(path) == text:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary.write_text(text + "\n")
        os.replace(self.temporary, path)
        self._written[path] = text


class FakeInfinibandReader(InfinibandReader):
    """Reads the simulated node's tree, first bringing it up to the simulated time `clock()`."""

    def __init__(
        self,
        root: str,
        spec: InfinibandSpec,
        seed: int,
        clock: Callable[[], float],
        counters: Collection[str] | None = None,
    ):
        super().__init__(root, counters)
        self._sysfs, self._spec, self._seed, self._clock = root, spec, seed, clock
        self._counters_read = counters
        self._writer = _Writer(Path(root))

    def read(self) -> list[PortReading]:
        spec, t = self._spec, self._clock()
        write_infiniband(
            self._sysfs,
            spec.ports,
            t,
            self._seed,
            spec.down,
            spec.flaky,
            writer=self._writer,
            counters=self._counters_read,
        )
        return super().read()
