"""Run history (`benchmarks/results.json`) and the generated `docs/benchmarks.md`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.inprocess import BACKGROUND_FUNCTIONS, STATIC_FUNCTIONS
from benchmarks.machine import ROOT
from benchmarks.metrics import LOAD_P99_LIMIT_MS, MEASURES, SECTIONS, TARGETS, Measure

HISTORY = ROOT / "benchmarks" / "results.json"
DOC = ROOT / "docs" / "benchmarks.md"
Run = dict[str, Any]


def load_history(path: Path = HISTORY) -> list[Run]:
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data.get("runs", []))


def save_history(runs: Sequence[Run], path: Path = HISTORY) -> None:
    path.write_text(json.dumps({"runs": list(runs)}, indent=1) + "\n", encoding="utf-8")


def previous_run(runs: Sequence[Run], current: Run) -> Run | None:
    """The latest recorded run of the same kind (quick or full) before `current`."""
    for run in reversed(runs):
        if run is not current and run.get("quick") == current.get("quick"):
            return run
    return None


# --- formatting ---------------------------------------------------------------------------------


def number(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def calls(value: float) -> str:
    """Call counts: whole numbers as such, fractions with two decimals."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def delta(current: float | None, previous: float | None, digits: int) -> str:
    if current is None or previous is None:
        return "-"
    change = current - previous
    if previous == 0 or abs(change) < 10 ** -(digits + 1):
        return f"{change:+,.{max(digits, 1)}f}" if change else "0"
    return f"{100 * change / abs(previous):+.1f}%"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def value(run: Run | None, scenario: str, key: str) -> float | None:
    if run is None:
        return None
    found = run.get("scenarios", {}).get(scenario, {}).get("metrics", {}).get(key)
    return None if found is None else float(found)


# --- sections -------------------------------------------------------------------------------------


def machine_section(run: Run) -> list[str]:
    m = run["machine"]
    rows = [
        ("Date", run["date"]),
        ("Commit", f"`{run['commit']}`"),
        ("Mode", ("quick (smoke)" if run["quick"] else "full") + f", soak {run['soak_s']:g} s"),
        ("Counts", ", ".join(f"{k} {v}" for k, v in run["counts"].items())),
        ("CPU", f"{m['cpu']} ({m['cores']} cores)"),
        ("Memory", f"{m['memory_gib']} GiB"),
        ("Python", m["python"]),
        ("Kernel", m["kernel"]),
    ]
    return table(("", ""), rows)


def targets_section(run: Run) -> list[str]:
    rows = []
    for target in TARGETS:
        scenarios = [target.scenario] if target.scenario else list(run["scenarios"])
        for scenario in scenarios:
            measured = value(run, scenario, target.key)
            if measured is None:
                continue
            measure = MEASURES[target.key]
            shown = f"{number(measured, measure.digits)} {measure.unit}"
            rows.append((measure.label, scenario, shown, target.wanted, target.verdict(measured)))
    rows += load_target_rows(run.get("load"))
    return table(("Measure", "Scenario", "Measured", "Target", "Verdict"), rows)


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def load_target_rows(load: dict[str, Any] | None) -> list[tuple[str, str, str, str, str]]:
    """The issue's load test: 50 scrapers, no errors, p99 < 50 ms, no extra NVML calls."""
    if not load:
        return []
    hit, calls = load["process"], load["in_process"]
    clients, scenario = hit["clients"], load["scenario"]
    idle, loaded = calls["idle"]["calls_per_cycle"], calls["loaded"]["calls_per_cycle"]
    return [
        (
            f"{clients} scrapers: errors",
            scenario,
            f"{hit['errors']:,}",
            "0",
            _verdict(hit["errors"] == 0),
        ),
        (
            f"{clients} scrapers: p99",
            scenario,
            f"{hit['p99_ms']:.1f} ms",
            f"< {LOAD_P99_LIMIT_MS:g} ms",
            _verdict(hit["p99_ms"] < LOAD_P99_LIMIT_MS),
        ),
        (
            f"{clients} scrapers: NVML calls per cycle, load vs idle",
            scenario,
            f"{loaded:,.1f} vs {idle:,.1f}",
            "no extra NVML calls",
            _verdict(loaded <= idle),
        ),
    ]


def load_section(load: dict[str, Any] | None) -> list[str]:
    if not load:
        return ["No load test in this run (`--load-seconds 0`)."]
    hit, calls = load["process"], load["in_process"]
    rows = [
        ("scrapers (threads, one keep-alive connection each)", f"{hit['clients']}"),
        ("length", f"{hit['seconds']:.1f} s"),
        ("requests answered", f"{hit['requests']:,} ({hit['per_second']:,.0f} req/s)"),
        (
            "errors",
            f"{hit['errors']:,}"
            + (f" (first: `{hit['first_error']}`)" if hit["first_error"] else ""),
        ),
        (
            "latency p50 / p99 / max",
            f"{hit['p50_ms']:.2f} / {hit['p99_ms']:.2f} / {hit['max_ms']:.1f} ms",
        ),
        ("agent CPU under load", f"{hit['agent_cpu_percent']:.0f}% of a core"),
        (
            "agent RSS before / after",
            f"{hit['rss_before_mib']:.1f} / {hit['rss_after_mib']:.1f} MiB",
        ),
    ]
    lines = table(
        ("Real agent process", f"`{load['scenario']}`, `--interval {load['interval']}`"), rows
    )
    header = (
        "In-process agent, FakeNvml.calls",
        "cycles",
        "seconds",
        "NVML calls per cycle",
        "NVML calls per second",
        "cycles per second",
    )
    rate_rows = [
        _rate_row(name, calls[key])
        for name, key in (("idle (no scraper)", "idle"), (f"{hit['clients']} scrapers", "loaded"))
    ]
    inner = calls["load"]
    note = (
        f"In-process scrapers (sharing the agent's interpreter): {inner['requests']:,} "
        f"requests, {inner['errors']} errors, p99 {inner['p99_ms']:.1f} ms."
    )
    return [*lines, "", *table(header, rate_rows), "", note]


def _rate_row(name: str, rate: dict[str, float]) -> tuple[str, ...]:
    return (
        name,
        f"{rate['cycles']:.0f}",
        f"{rate['seconds']:.1f}",
        f"{rate['calls_per_cycle']:,.2f}",
        f"{rate['calls_per_second']:,.1f}",
        f"{rate['cycles_per_second']:.3f}",
    )


def results_section(run: Run, previous: Run | None) -> list[str]:
    scenarios = list(run["scenarios"])
    header = ["Measure", "Unit"]
    for scenario in scenarios:
        header += [scenario, "Δ"]
    lines: list[str] = []
    for section in SECTIONS:
        lines += ["", f"### {section.title}", ""]
        lines += table(header, (_result_row(m, scenarios, run, previous) for m in section.measures))
    return lines


def _result_row(
    measure: Measure, scenarios: list[str], run: Run, previous: Run | None
) -> list[str]:
    row = [measure.label, measure.unit]
    for scenario in scenarios:
        now, before = value(run, scenario, measure.key), value(previous, scenario, measure.key)
        row += [number(now, measure.digits), delta(now, before, measure.digits)]
    return row


def nvml_section(run: Run) -> list[str]:
    scenarios = list(run["scenarios"])
    functions: set[str] = set()
    for data in run["scenarios"].values():
        functions |= set(data["nvml_first"]) | set(data["nvml_steady"])
    header = ["Function", "Called"]
    for scenario in scenarios:
        header += [f"{scenario} cycle 1", f"{scenario} later, per cycle", "per GPU per cycle"]
    rows = []
    order = {"once": 0, "every cycle": 1, "event thread": 2}
    for function in sorted(functions, key=lambda f: (order[_kind(f)], f)):
        row = [f"`{function}`", _kind(function)]
        for scenario in scenarios:
            data = run["scenarios"][scenario]
            gpus = data["metrics"]["gpus"]
            steady = data["nvml_steady"].get(function, 0.0)
            row += [
                calls(data["nvml_first"].get(function, 0)),
                calls(steady),
                calls(steady / gpus),
            ]
        rows.append(row)
    return table(header, rows)


def _kind(function: str) -> str:
    if function in STATIC_FUNCTIONS:
        return "once"
    if function in BACKGROUND_FUNCTIONS:
        return "event thread"
    return "every cycle"


def profile_section(run: Run, kind: str, limit: int = 8) -> list[str]:
    scenarios = list(run["scenarios"])
    ranked = {s: list(run["scenarios"][s][kind].items())[:limit] for s in scenarios}
    rows = []
    for i in range(max(len(entries) for entries in ranked.values())):
        row = []
        for scenario in scenarios:
            entries = ranked[scenario]
            row += [f"`{entries[i][0]}`", f"{entries[i][1]:.1f}%"] if i < len(entries) else ["", ""]
        rows.append(row)
    header = [part for s in scenarios for part in (f"{s}: module", "own time")]
    return table(header, rows)


def memory_section(run: Run) -> list[str]:
    """RSS by import step, then the site that kept most memory across cycles per scenario."""
    steps = run.get("import_rss", [])
    lines = table(
        ("Step (imports, cumulative)", "RSS MiB", "added MiB"),
        ((label, f"{rss:.1f}", f"+{added:.1f}") for label, rss, added in steps),
    )
    header = ("Scenario", "kept across cycles, fake excluded", "site that grew most in both")
    return [*lines, "", *table(header, (_retained_row(run, s) for s in run["scenarios"]))]


def _retained_row(run: Run, scenario: str) -> tuple[str, str, str]:
    kept = number(value(run, scenario, "retained_kib_per_100_cycles"), 1)
    site = run["scenarios"][scenario].get("retained_top_site", "-")
    return scenario, f"{kept} KiB/100 cycles", f"`{site}`"


HISTORY_COLUMNS = (
    ("h100-8", "scrape_seq_p50_ms", "8-GPU scrape p50 ms"),
    ("h100-64", "scrape_seq_p50_ms", "64-GPU scrape p50 ms"),
    ("h100-64", "scrape_conc_p99_ms", "64-GPU 8-client p99 ms"),
    ("h100-8", "cycle_cpu_ms", "8-GPU cycle CPU ms"),
    ("h100-64", "cycle_cpu_ms", "64-GPU cycle CPU ms"),
    ("h100-64", "rss_max_mib", "64-GPU RSS max MiB"),
    ("h100-64", "rss_drift_mib", "64-GPU RSS drift MiB"),
    ("h100-8", "series", "8-GPU series"),
    ("h100-mig-56", "cycle_cpu_ms", "56-MIG cycle CPU ms"),
    ("procs-500", "cycle_cpu_ms", "500-proc cycle CPU ms"),
)


def history_section(runs: Sequence[Run]) -> list[str]:
    header = ["Date", "Commit", "Mode", *(title for _, _, title in HISTORY_COLUMNS)]
    rows = []
    for run in reversed(runs):
        row = [run["date"], f"`{run['commit']}`", "quick" if run["quick"] else "full"]
        for scenario, key, _ in HISTORY_COLUMNS:
            row.append(number(value(run, scenario, key), MEASURES[key].digits))
        rows.append(row)
    return table(header, rows)
