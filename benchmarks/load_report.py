"""The load test in `docs/benchmarks.md`: its target rows and its own section."""

from __future__ import annotations

from typing import Any

from benchmarks.metrics import LOAD_P99_LIMIT_MS
from benchmarks.tables import table

Load = dict[str, Any]


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def load_target_rows(load: Load | None) -> list[tuple[str, str, str, str, str]]:
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


def load_section(load: Load | None) -> list[str]:
    if not load:
        return ["No load test in this run (`--load-seconds 0`)."]
    return [*_process_table(load), "", *_rates_table(load), "", _in_process_note(load)]


def _process_table(load: Load) -> list[str]:
    """The real agent process under the scrapers: requests, errors, latency, CPU, RSS."""
    hit = load["process"]
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
    return table(
        ("Real agent process", f"`{load['scenario']}`, `--interval {load['interval']}`"), rows
    )


def _rates_table(load: Load) -> list[str]:
    """NVML calls per cycle in-process, idle and under the scrapers."""
    calls, clients = load["in_process"], load["process"]["clients"]
    header = (
        "In-process agent, FakeNvml.calls",
        "cycles",
        "seconds",
        "NVML calls per cycle",
        "NVML calls per second",
        "cycles per second",
    )
    rows = [
        _rate_row(name, calls[key])
        for name, key in (("idle (no scraper)", "idle"), (f"{clients} scrapers", "loaded"))
    ]
    return table(header, rows)


def _rate_row(name: str, rate: dict[str, float]) -> tuple[str, ...]:
    return (
        name,
        f"{rate['cycles']:.0f}",
        f"{rate['seconds']:.1f}",
        f"{rate['calls_per_cycle']:,.2f}",
        f"{rate['calls_per_second']:,.1f}",
        f"{rate['cycles_per_second']:.3f}",
    )


def _in_process_note(load: Load) -> str:
    inner = load["in_process"]["load"]
    return (
        f"In-process scrapers (sharing the agent's interpreter): {inner['requests']:,} "
        f"requests, {inner['errors']} errors, p99 {inner['p99_ms']:.1f} ms."
    )
