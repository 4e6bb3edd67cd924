"""Running totals per job: what the counters export, what the ledger line says when a job ends.

A job is *seen* in a cycle when it holds a GPU or MIG instance (`job_shares`). It *ends* when it
has not been seen for `ended_after`; its end is the last time it was seen. An ended job's
counters stay exported for `retention` after its end (so every Prometheus scraping the agent sees
the final value, even after an outage or an agent restart, which restores them from the
checkpoint), then are dropped. `job_id="none"` never ends.

Times here are on the accounting clock (monotonic); `to_state`/`from_state` convert them to and
from wall-clock seconds with the offset the caller gives, so a checkpoint survives a restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.collectors.job_shares import FLOPS, NONE_KEY, Amounts, Key
from agent.hw.cgroups import JobRef

SECONDS_STATES = {
    "allocated": "gpu_seconds",
    "busy": "busy_gpu_seconds",
    "idle_allocated": "idle_allocated_gpu_seconds",
}


@dataclass
class JobRecord:
    scheduler: str
    job_id: str
    start: float
    last_seen: float
    user: str = ""
    namespace: str = ""
    pod: str = ""
    gpus: set[str] = field(default_factory=set)  # GPU or MIG UUIDs it held
    totals: Amounts = field(default_factory=dict)
    end: float | None = None
    written: bool = False  # its ledger line is in the ledger file

    @property
    def key(self) -> Key:
        return (self.scheduler, self.job_id)

    def total(self, name: str) -> float:
        return self.totals.get(name, 0.0)

    def flops(self) -> dict[str, float]:
        return {
            k.removeprefix(FLOPS): v for k, v in sorted(self.totals.items()) if k.startswith(FLOPS)
        }

    def line(self, offset: float) -> dict[str, Any]:
        """The ledger line: totals, owner and span (wall-clock seconds)."""
        end = self.last_seen if self.end is None else self.end
        return {
            "job_id": self.job_id,
            "scheduler": self.scheduler,
            "user": self.user or None,
            "namespace": self.namespace or None,
            "pod": self.pod or None,
            "start": round(self.start + offset, 3),
            "end": round(end + offset, 3),
            "gpus": sorted(self.gpus),
            "gpu_seconds": self.total("gpu_seconds"),
            "busy_gpu_seconds": self.total("busy_gpu_seconds"),
            "idle_allocated_gpu_seconds": self.total("idle_allocated_gpu_seconds"),
            "energy_joules": self.total("energy_joules"),
            "delivered_flops": self.flops(),
        }


class JobBook:
    """Every job seen and not yet forgotten, and `none`."""

    def __init__(self) -> None:
        self.records: dict[Key, JobRecord] = {}

    def seen(self, key: Key, refs: Iterable[JobRef], units: Iterable[str], now: float) -> None:
        record = self.records.get(key)
        if record is not None and record.end is not None and not record.written:
            record.end = None  # back before its line could be written: it goes on
        if record is None or record.end is not None:  # seen again after its line: a new run
            record = JobRecord(key[0], key[1], start=now, last_seen=now)
            self.records[key] = record
        record.last_seen = now
        record.gpus.update(units)
        for ref in refs:
            record.user = record.user or ref.user
            record.namespace = record.namespace or ref.namespace
            record.pod = record.pod or ref.pod

    def add(self, increments: Mapping[Key, Amounts], now: float) -> None:
        for key, amounts in increments.items():
            record = self.records.get(key)
            if record is None:  # `none`, or a holder seen() has not named (not expected)
                record = JobRecord(key[0], key[1], start=now, last_seen=now)
                self.records[key] = record
            for name, value in amounts.items():
                record.totals[name] = record.totals.get(name, 0.0) + value

    def finish(self, now: float, ended_after: float) -> list[JobRecord]:
        """Jobs not seen for `ended_after`: marked ended now, returned for the ledger."""
        ended = []
        for record in self.records.values():
            idle = now - record.last_seen > ended_after
            if record.end is None and record.key != NONE_KEY and idle:
                record.end = record.last_seen
                ended.append(record)
        return ended

    def unwritten(self) -> list[JobRecord]:
        return [r for r in self.records.values() if r.end is not None and not r.written]

    def expire(self, now: float, retention: float) -> None:
        """Forget ended jobs whose line is written (or no ledger is kept) after `retention`."""
        for key, record in list(self.records.items()):
            if record.end is not None and record.written and now - record.end > retention:
                del self.records[key]

    def to_state(self, offset: float) -> list[dict[str, Any]]:
        return [
            {
                **record.line(offset),
                "last_seen": record.last_seen + offset,
                "ended": record.end is not None,
                "written": record.written,
                "totals": record.totals,
            }
            for record in self.records.values()
        ]

    def load_state(self, state: Iterable[Mapping[str, Any]], offset: float) -> None:
        """Records saved by `to_state` (wall clock), on this clock (`offset` = wall - clock)."""
        for item in state:
            record = JobRecord(
                str(item["scheduler"]),
                str(item["job_id"]),
                start=float(item["start"]) - offset,
                last_seen=float(item["last_seen"]) - offset,
                user=str(item.get("user") or ""),
                namespace=str(item.get("namespace") or ""),
                pod=str(item.get("pod") or ""),
                gpus={str(g) for g in item.get("gpus", [])},
                totals={str(k): float(v) for k, v in dict(item["totals"]).items()},
                end=float(item["end"]) - offset if item.get("ended") else None,
                written=bool(item.get("written")),
            )
            self.records[record.key] = record
