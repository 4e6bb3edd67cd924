"""The jobs view's counters: per-job GPU-seconds, energy and FLOP, the ledger and checkpoint.

`Accountant` is fed, per GPU and cycle, who holds the GPU or each MIG instance (`observe`), turns
the interval since the GPU's previous reading into per-job increments (`job_shares`), keeps the
running totals (`job_ledger.JobBook`), writes a ledger line per ended job and checkpoints the
totals (`agent.ledger_file`), and gives the counters' samples (`finish`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.collectors.activity import DEFAULT_PEAKS
from agent.collectors.job_ledger import SECONDS_STATES, JobBook
from agent.collectors.job_shares import Holders, Interval, Key, gpu_increments
from agent.hw import GpuReading
from agent.hw.cgroups import JobRef
from agent.ledger_file import (
    append_lines,
    line_key,
    load_checkpoint,
    save_checkpoint,
    written_keys,
)
from agent.metrics import MetricSpec, Sample

log = logging.getLogger(__name__)
JOB = ("scheduler", "job_id")
JOB_ENERGY = MetricSpec(
    "suanli_job_gpu_energy_joules_total",
    "counter",
    "GPU energy drawn by the job (job_id=none: what no job held); jobs plus none add up to "
    "the GPUs' energy.",
    JOB,
)
JOB_SECONDS = MetricSpec(
    "suanli_job_gpu_seconds_total",
    "counter",
    "GPU-seconds the job held (allocated), of them with SMs active (busy), and held while the "
    "GPU or MIG instance was idle (idle_allocated); a MIG instance counts its share of the GPU.",
    (*JOB, "state"),
)
JOB_FLOPS = MetricSpec(
    "suanli_job_delivered_flops_total",
    "counter",
    "Floating-point operations delivered on the job's GPUs, its share; jobs plus none add up "
    "to the GPUs' delivered FLOP.",
    (*JOB, "precision"),
)
SPECS = (JOB_ENERGY, JOB_SECONDS, JOB_FLOPS)


@dataclass(frozen=True)
class LedgerOptions:
    ledger: str  # "" off
    state_file: str  # "" off
    max_bytes: int
    keep: int
    checkpoint_interval: float
    ended_after: float
    retention: float
    idle_below: float
    every_precision: bool = False  # else only DEFAULT_PEAKS (bf16): one series per job


@dataclass
class Held:
    """One job on one GPU this cycle: its label sets and the units it holds with their weight
    (SM share): None for the whole GPU, else a MIG GPU instance id."""

    refs: set[JobRef]
    units: dict[int | None, float]


def holders(reading: GpuReading, held: Mapping[Key, Held]) -> tuple[Holders, dict[Key, set[str]]]:
    """Holders of the GPU and of its MIG instances, and the UUIDs each job holds."""
    found = Holders()
    uuids: dict[Key, set[str]] = {}
    mig_uuid = {m.instance.gpu_instance: m.instance.uuid for m in reading.mig}
    for key, entry in held.items():
        for unit, weight in entry.units.items():
            if unit is None:
                found.gpu[key] = weight
                uuids.setdefault(key, set()).add(reading.device.uuid)
            else:
                found.mig.setdefault(unit, {})[key] = weight
                uuids.setdefault(key, set()).add(mig_uuid.get(unit, reading.device.uuid))
    return found, uuids


class Accountant:
    def __init__(
        self, options: LedgerOptions, clock: Callable[[], float], wall: Callable[[], float]
    ) -> None:
        self.options = options
        self._clock = clock
        self._wall = wall
        self.book = JobBook()
        self._seen: dict[str, tuple[float, float | None, bool]] = {}  # uuid: (t, joules, restored)
        self._ledger = Path(options.ledger) if options.ledger else None
        self._state = Path(options.state_file) if options.state_file else None
        self._saved_at: float | None = None
        self._failed: set[str] = set()
        self._restored: set[Key] = set()  # their line may have reached the ledger after the save
        if self._state is not None:
            self._restore(self._state)

    def observe(self, reading: GpuReading, held: Mapping[Key, Held], now: float) -> None:
        found, uuids = holders(reading, held)
        for key, entry in held.items():
            self.book.seen(key, entry.refs, uuids.get(key, ()), now)
        interval = self._interval(reading, now)
        if interval is not None:
            self.book.add(gpu_increments(reading, found, interval), now)

    def forget(self, uuid: str) -> None:
        """A GPU that is down (or whose processes NVML did not give): its time and energy until
        it is read again are nobody's."""
        self._seen.pop(uuid, None)

    def _interval(self, reading: GpuReading, now: float) -> Interval | None:
        uuid, joules = reading.device.uuid, reading.energy_joules
        previous = self._seen.get(uuid)
        self._seen[uuid] = (now, joules, False)
        if previous is None:
            return None  # first sight: counters start at 0, so increase() sees the first interval
        then, before, restored = previous
        # a counter that went back (driver reload, reboot) is not billed for that interval
        delta = joules - before if joules is not None and before is not None else None
        delta = None if delta is None or delta < 0 else delta
        if restored and delta is None:
            return None  # across a restart, the energy counter is the proof the GPU kept running
        return Interval(max(0.0, now - then), delta, self.options.idle_below)

    def finish(self, now: float) -> list[Sample]:
        """Close jobs not seen lately, write their lines, checkpoint; the counters' samples."""
        self.book.finish(now, self.options.ended_after)
        self._write_ledger()
        self.book.expire(now, self.options.retention)
        interval = self.options.checkpoint_interval
        if self._state is not None and (self._saved_at is None or now - self._saved_at >= interval):
            self.checkpoint(now)
        return self.samples()

    def _write_ledger(self) -> None:
        pending = self.book.unwritten()
        if self._ledger is None or not pending:
            for record in pending:
                record.written = True  # no ledger kept: nothing to wait for
            return
        offset = self._wall() - self._clock()
        if any(r.key in self._restored for r in pending):
            done = written_keys(self._ledger)
            for record in pending:
                record.written = line_key(record.line(offset)) in done
            self._restored -= {r.key for r in pending}
            pending = [r for r in pending if not r.written]
        try:
            append_lines(
                self._ledger,
                [r.line(offset) for r in pending],
                self.options.max_bytes,
                self.options.keep,
            )
        except OSError as err:
            self._once("ledger", f"job ledger {self._ledger}: {err}; retrying each cycle")
            return
        for record in pending:
            record.written = True

    def checkpoint(self, now: float) -> None:
        if self._state is None:
            return
        offset = self._wall() - now
        state = {
            "version": 1,
            "saved": now + offset,
            "gpus": {u: {"at": t + offset, "joules": j} for u, (t, j, _) in self._seen.items()},
            "jobs": self.book.to_state(offset),
        }
        try:
            save_checkpoint(self._state, state)
            self._saved_at = now
        except OSError as err:
            self._once("checkpoint", f"job checkpoint {self._state}: {err}")

    def _restore(self, path: Path) -> None:
        try:
            state = load_checkpoint(path)
            if state is None:
                return
            offset = self._wall() - self._clock()
            self.book.load_state(state["jobs"], offset)
            for uuid, gpu in dict(state["gpus"]).items():
                joules = None if gpu.get("joules") is None else float(gpu["joules"])
                self._seen[str(uuid)] = (float(gpu["at"]) - offset, joules, True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("job checkpoint %s not restored, starting from zero: %s", path, err)
            self.book = JobBook()
            self._seen.clear()
            return
        self._restored = {key for key, r in self.book.records.items() if not r.written}

    def _once(self, what: str, message: str) -> None:
        if what not in self._failed:
            self._failed.add(what)
            log.warning("%s", message)

    def samples(self) -> list[Sample]:
        samples = []
        for key, record in sorted(self.book.records.items()):
            samples.append(Sample(JOB_ENERGY, key, record.total("energy_joules")))
            samples += [
                Sample(JOB_SECONDS, (*key, state), record.total(name))
                for state, name in SECONDS_STATES.items()
            ]
            samples += [
                Sample(JOB_FLOPS, (*key, p), v)
                for p, v in record.flops().items()
                if self.options.every_precision or p in DEFAULT_PEAKS
            ]
        return samples

    def close(self) -> None:
        self.checkpoint(self._clock())
