"""The sections of `docs/benchmarks.md` drawn from a run: machine, targets, results, NVML calls,
profiles, memory, history (the load test's own are in `benchmarks/load_report.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.history import Run, value
from benchmarks.load_report import load_target_rows
from benchmarks.metrics import MEASURES, SECTIONS, TARGETS, Measure
from benchmarks.nvml_calls import BACKGROUND_FUNCTIONS, STATIC_FUNCTIONS
from benchmarks.tables import calls, delta, number, table


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
