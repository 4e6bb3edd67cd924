"""One count per XID, whichever of NVML's event API and the kernel log reported it."""

from __future__ import annotations

from agent.hw.xid_ledger import XidLedger, worth_logging

GPU = (0, 0x9B, 0)  # PCI 0000:9b:00, as both sources name it


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def ledger(clock: Clock) -> XidLedger:
    return XidLedger(window_s=10.0, clock=lambda: 1.7e9 + clock.t, monotonic=clock)


def test_a_fault_both_sources_report_is_counted_once_in_either_order() -> None:
    clock = Clock()
    xids = ledger(clock)
    assert xids.sighting(GPU, 79, "nvml") == 1
    clock.t += 0.3
    assert xids.sighting(GPU, 79, "kmsg") == 0, "the kernel log's line of the same fault"
    assert xids.sighting(GPU, 48, "kmsg") == 1
    assert xids.sighting(GPU, 48, "nvml") == 0
    assert xids.record().counts == {GPU: {79: 1, 48: 1}}


def test_a_burst_seen_by_both_counts_each_event_once() -> None:
    clock = Clock()
    xids = ledger(clock)
    for _ in range(1000):
        xids.sighting(GPU, 13, "nvml")
    for _ in range(1000):
        xids.sighting(GPU, 13, "kmsg")
    assert xids.record().counts[GPU][13] == 1000


def test_sightings_further_apart_than_the_window_are_two_faults() -> None:
    clock = Clock()
    xids = ledger(clock)
    xids.sighting(GPU, 119, "nvml")
    clock.t += 11.0
    assert xids.sighting(GPU, 119, "kmsg") == 2
    other_gpu = (0, 0x18, 0)
    assert xids.sighting(other_gpu, 119, "nvml") == 1, "another GPU's XID is its own"


def test_an_old_kernel_log_record_keeps_the_time_it_happened() -> None:
    clock = Clock()
    xids = ledger(clock)
    xids.sighting(GPU, 79, "kmsg", at=1.6e9)  # read at start, from earlier in this boot
    assert xids.record().last_seen[(GPU, 79)] == 1.6e9


def test_a_storm_is_logged_at_powers_of_ten() -> None:
    assert [n for n in range(1, 1001) if worth_logging(n)] == [1, 10, 100, 1000]
    assert not worth_logging(0)
