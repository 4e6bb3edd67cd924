"""`suanli-agent ledger`: the ledger summed per job, user or namespace, as an operator runs it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

RunAgent = Callable[..., "subprocess.CompletedProcess[str]"]
DEC_1 = 1796083200.0  # 2026-12-01T00:00:00Z
DAY = 86400.0


def line(job: str, namespace: str | None, end: float, hours: float, **extra: object) -> str:
    record: dict[str, object] = {
        "job_id": job,
        "scheduler": "kubernetes" if namespace else "slurm",
        "user": None if namespace else "20821",
        "namespace": namespace,
        "pod": job if namespace else None,
        "start": end - hours * 3600,
        "end": end,
        "gpus": ["GPU-0"],
        "gpu_seconds": hours * 3600,
        "busy_gpu_seconds": hours * 1800,
        "idle_allocated_gpu_seconds": hours * 360,
        "energy_joules": hours * 3.6e6 * 0.5,  # 500 W
        "delivered_flops": {"bf16": hours * 3600 * 2e14},
    }
    record.update(extra)
    return json.dumps(record) + "\n"


def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.jsonl"
    path.write_text(
        line("vllm-a", "llm-serving", DEC_1 + 3600, 10.0)
        + line("vllm-b", "llm-serving", DEC_1 + 7200, 2.0)
        + line("3001001", None, DEC_1 + DAY + 60, 8.0)
        + "{not json\n"
        + line("broken", "x", DEC_1, 1.0, energy_joules="lots")
        + '{"job_id": "cut", "sched'  # a line cut by a crash while it was written
    )
    return path


def test_per_namespace_with_hand_summed_totals(run_agent: RunAgent, tmp_path: Path) -> None:
    path = ledger(tmp_path)
    result = run_agent("ledger", str(path), "--by", "namespace", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    serving = rows["llm-serving"]
    assert serving["jobs"] == 2
    assert serving["gpu_hours"] == 12.0
    assert serving["busy_gpu_hours"] == 6.0
    assert serving["idle_allocated_gpu_hours"] == 1.2
    assert serving["energy_kwh"] == 6.0  # 12 h at 500 W
    assert serving["pflop_bf16"] == 12 * 3600 * 0.2  # 0.2 PFLOP/s for 12 h
    assert rows["unknown"]["jobs"] == 1, "the Slurm job has no namespace"
    assert result.stderr.strip() == (
        f"suanli-agent ledger: 3 malformed line(s) skipped (first: {path}:4)"
    )


def test_a_window_counts_jobs_by_their_end(run_agent: RunAgent, tmp_path: Path) -> None:
    path = ledger(tmp_path)
    args = ("--since", "2026-12-02", "--until", "2026-12-03", "--by", "user", "--format", "csv")
    result = run_agent("ledger", str(path), *args)
    assert result.returncode == 0, result.stderr
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["key"], row["jobs"], row["gpu_hours"]) == ("20821", "1", "8.0")


def test_the_table_lists_each_job_biggest_first(run_agent: RunAgent, tmp_path: Path) -> None:
    result = run_agent("ledger", str(ledger(tmp_path)))
    assert result.returncode == 0
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["key", "jobs", "gpu_hours"]
    assert [r.split()[0] for r in rows] == [
        "kubernetes/vllm-a",
        "slurm/3001001",
        "kubernetes/vllm-b",
    ]
    assert rows[0].split()[2] == "10.000"


def test_a_missing_file_or_bad_time_is_one_line_exit_2(run_agent: RunAgent, tmp_path: Path) -> None:
    missing = run_agent("ledger", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"suanli-agent ledger: {tmp_path / 'nope.jsonl'}: No such file or directory"
    ]
    bad = run_agent("ledger", str(ledger(tmp_path)), "--since", "yesterday")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert '"yesterday" is not a time' in bad.stderr
