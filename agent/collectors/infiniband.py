"""InfiniBand and RoCE ports: state, rate, link downs and errors, per device and port.

Series budget: four series per port by default (up, rate, link downs, receive errors), which is
what the health checks need; bytes, per-kind errors, transmit waits and the port's descriptive
strings are *detail*. A node without `/sys/class/infiniband` exports nothing here; a folder that
exists but cannot be listed fails this collector alone (`suanli_collector_success 0`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.collectors.base import Context, Kind
from agent.hw.infiniband import InfinibandReader, PortReading
from agent.metrics import MetricSpec, Sample
from agent.options import DIRECTORY, boolean, option, path_option

LABELS = ("device", "port")
PORT_UP = MetricSpec(
    "suanli_infiniband_port_up",
    "gauge",
    "1 when the port is ACTIVE and its physical link is LinkUp, else 0.",
    LABELS,
)
PORT_RATE = MetricSpec(
    "suanli_infiniband_port_rate_bytes_per_second",
    "gauge",
    "The port's negotiated signalling rate (sysfs rate, 400 Gb/sec is 5e10).",
    LABELS,
)
LINK_DOWNED = MetricSpec(
    "suanli_infiniband_link_downed_total",
    "counter",
    "Times the link failed its error recovery and went down (counter link_downed).",
    LABELS,
)
RECEIVE_ERRORS = MetricSpec(
    "suanli_infiniband_receive_errors_total",
    "counter",
    "Errors on what the port received: symbol_error plus port_rcv_errors.",
    LABELS,
)
BYTES = MetricSpec(
    "suanli_infiniband_bytes_total",
    "counter",
    "Data sent (tx) and received (rx), from port_xmit_data / port_rcv_data (4-byte words).",
    (*LABELS, "direction"),
    detail=True,
)
ERRORS = MetricSpec(
    "suanli_infiniband_errors_total",
    "counter",
    "Error counters by their sysfs name (counters/ and the RoCE hw_counters/ error counters).",
    (*LABELS, "error"),
    detail=True,
)
XMIT_WAIT = MetricSpec(
    "suanli_infiniband_xmit_wait_total",
    "counter",
    "Ticks the port had data to send but no flow-control credit (port_xmit_wait): congestion.",
    LABELS,
    detail=True,
)
PORT_INFO = MetricSpec(
    "suanli_infiniband_port_info",
    "gauge",
    "The port's state, physical state, link layer (Ethernet is RoCE) and adapter; value 1.",
    (*LABELS, "state", "phys_state", "link_layer", "hca_type", "fw_ver", "board_id"),
    detail=True,
)
DEFAULT_SPECS = (PORT_UP, PORT_RATE, LINK_DOWNED, RECEIVE_ERRORS)
DEFAULT_COUNTERS = ("link_downed", "symbol_error", "port_rcv_errors")  # what they are made of
DETAIL_SPECS = (BYTES, ERRORS, XMIT_WAIT, PORT_INFO)
RECEIVE_ERROR_COUNTERS = ("symbol_error", "port_rcv_errors")
ERROR_COUNTERS = (
    "symbol_error",
    "port_rcv_errors",
    "port_rcv_remote_physical_errors",
    "port_rcv_switch_relay_errors",
    "port_rcv_constraint_errors",
    "port_xmit_constraint_errors",
    "port_xmit_discards",
    "local_link_integrity_errors",
    "excessive_buffer_overrun_errors",
    "link_error_recovery",
    "VL15_dropped",
    # hw_counters (mlx5, RoCE and IB): drops and retransmissions
    "out_of_buffer",
    "out_of_sequence",
    "packet_seq_err",
    "local_ack_timeout_err",
    "rnr_nak_retry_err",
    "implied_nak_seq_err",
    "rx_icrc_encapsulated",
)


def receive_errors(reading: PortReading) -> int | None:
    """symbol_error + port_rcv_errors over the ones the port has; None when one of them gave no
    value this cycle, so the counter never drops (a drop would read as a reset and a burst)."""
    if reading.unreadable.intersection(RECEIVE_ERROR_COUNTERS):
        return None
    present = [reading.counters[c] for c in RECEIVE_ERROR_COUNTERS if c in reading.counters]
    return sum(present) if present else None


@dataclass(frozen=True)
class InfinibandOptions:
    enabled: bool = option(True, boolean)
    sysfs: str = path_option("/sys", DIRECTORY)
    detail: bool = option(False, boolean)


class InfinibandCollector:
    """Every port of every InfiniBand/RoCE device the reader finds."""

    name = "infiniband"

    def __init__(self, reader: InfinibandReader, detail: bool = False) -> None:
        self.reader = reader
        self.detail = detail

    def specs(self) -> Sequence[MetricSpec]:
        return [*DEFAULT_SPECS, *DETAIL_SPECS] if self.detail else list(DEFAULT_SPECS)

    def collect(self) -> list[Sample]:
        samples: list[Sample] = []
        for reading in self.reader.read():
            samples += self._default(reading)
            if self.detail:
                samples += self._detail(reading)
        return samples

    def close(self) -> None:
        return None

    @staticmethod
    def _default(reading: PortReading) -> list[Sample]:
        labels = (reading.device, reading.port)
        samples = [Sample(PORT_UP, labels, 1.0 if reading.up else 0.0)]
        if reading.rate_bytes_per_second is not None:
            samples.append(Sample(PORT_RATE, labels, reading.rate_bytes_per_second))
        downed = reading.counters.get("link_downed")
        if downed is not None:
            samples.append(Sample(LINK_DOWNED, labels, float(downed)))
        errors = receive_errors(reading)
        if errors is not None:
            samples.append(Sample(RECEIVE_ERRORS, labels, float(errors)))
        return samples

    @staticmethod
    def _detail(reading: PortReading) -> list[Sample]:
        labels = (reading.device, reading.port)
        samples = []
        for direction, value in (("tx", reading.tx_bytes), ("rx", reading.rx_bytes)):
            if value is not None:
                samples.append(Sample(BYTES, (*labels, direction), float(value)))
        for error in ERROR_COUNTERS:
            if (count := reading.counters.get(error)) is not None:
                samples.append(Sample(ERRORS, (*labels, error), float(count)))
        if (wait := reading.counters.get("port_xmit_wait")) is not None:
            samples.append(Sample(XMIT_WAIT, labels, float(wait)))
        info = reading.info
        strings = [reading.state, reading.phys_state, reading.link_layer]
        strings += [info.get(key) for key in ("hca_type", "fw_ver", "board_id")]
        samples.append(Sample(PORT_INFO, (*labels, *(s or "" for s in strings)), 1.0))
        return samples


def counters_read(detail: bool) -> tuple[str, ...] | None:
    """The counter files a reader must read for these metrics (None: every one)."""
    return None if detail else DEFAULT_COUNTERS


def build(options: InfinibandOptions, context: Context) -> InfinibandCollector:
    wanted = counters_read(options.detail)
    make = context.parts.infiniband or (lambda counters: InfinibandReader(options.sysfs, counters))
    return InfinibandCollector(make(wanted), options.detail)


KIND = Kind(
    "infiniband",
    InfinibandOptions,
    build,
    "InfiniBand / RoCE ports (collector `infiniband`)",
    (*DEFAULT_SPECS, *DETAIL_SPECS),
)
