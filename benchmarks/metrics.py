"""What a run reports: every measure's key, label, unit and precision, and the brief's targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    unit: str
    digits: int = 2


@dataclass(frozen=True)
class Section:
    title: str
    measures: tuple[Measure, ...]


SECTIONS = (
    Section(
        "Scrapes over HTTP (real agent process, `--fake`, `--interval 1s`, keep-alive)",
        (
            Measure("scrape_seq_p50_ms", "1 client, sequential: p50", "ms", 3),
            Measure("scrape_seq_p99_ms", "1 client, sequential: p99", "ms", 3),
            Measure("scrape_seq_rps", "1 client, sequential: throughput", "req/s", 0),
            Measure("scrape_gzip_p50_ms", "1 client, gzip: p50", "ms", 3),
            Measure("scrape_gzip_p99_ms", "1 client, gzip: p99", "ms", 3),
            Measure("scrape_conc_p50_ms", "8 clients, concurrent: p50", "ms", 3),
            Measure("scrape_conc_p99_ms", "8 clients, concurrent: p99", "ms", 3),
            Measure("scrape_conc_rps", "8 clients, concurrent: throughput", "req/s", 0),
        ),
    ),
    Section(
        "Rendering (in-process, `Renderer.render`)",
        (
            Measure("render_first_ms", "first render of a new snapshot (text 0.0.4)", "ms", 3),
            Measure("render_cached_us", "cached re-render of the same snapshot", "µs", 1),
            Measure("render_gzip_extra_ms", "gzip of the cached text, first time", "ms", 3),
            Measure("render_openmetrics_first_ms", "first OpenMetrics render", "ms", 3),
            Measure("render_nvml_calls", "NVML calls made by renders (must be 0)", "calls", 0),
        ),
    ),
    Section(
        "Sampling cycle (in-process `sampler.sample_once()`, FakeNvml)",
        (
            Measure("cycle_first_wall_ms", "first cycle: wall", "ms", 2),
            Measure("cycle_first_cpu_ms", "first cycle: CPU", "ms", 2),
            Measure("cycle_wall_ms", "later cycles: wall per cycle", "ms", 2),
            Measure("cycle_cpu_ms", "later cycles: CPU per cycle", "ms", 2),
            Measure(
                "cycle_cpu_ms_agent_only", "later cycles: CPU less the fake's share (est.)", "ms", 2
            ),
            Measure("cycle_gpu_collector_ms", "gpu collector wall (median)", "ms", 2),
            Measure(
                "cycle_host_collector_ms", "host collector wall (median; waits on the GIL)", "ms", 2
            ),
        ),
    ),
    Section(
        "GPU read cycle at an H200's call latencies (`NvmlBackend.read()`, `latency: h200`)",
        (
            Measure("h200_read_parallel_ms", "every GPU in its own reader (the agent)", "ms", 1),
            Measure("h200_read_sequential_ms", "one GPU after another (inline)", "ms", 1),
            Measure("h200_read_speedup", "sequential / parallel", "x", 1),
        ),
    ),
    Section(
        "NVML calls (FakeNvml.calls)",
        (
            Measure("nvml_calls_per_gpu_first", "first cycle: calls per GPU", "calls", 1),
            Measure(
                "nvml_calls_per_gpu_cycle", "later cycles: calls per GPU per cycle", "calls", 1
            ),
            Measure(
                "nvml_static_rereads", "static-fact calls per later cycle (must be 0)", "calls", 0
            ),
        ),
    ),
    Section(
        "Agent process: memory and CPU",
        (
            Measure("rss_start_mib", "RSS after start (first Prometheus-format scrape)", "MiB", 1),
            Measure("rss_soak_end_mib", "RSS after the soak", "MiB", 1),
            Measure("rss_drift_mib", "RSS drift over the soak (end - start)", "MiB", 2),
            Measure(
                "rss_drift_after_minute_mib", "RSS drift after the soak's first minute", "MiB", 2
            ),
            Measure("rss_second_half_mib", "RSS growth over the soak's second half", "MiB", 2),
            Measure("rss_max_mib", "RSS max during the soak", "MiB", 1),
            Measure("rss_after_load_mib", "RSS after the scrape-latency loops", "MiB", 1),
            Measure(
                "retained_kib_per_100_cycles",
                "memory kept across cycles, fake excluded (tracemalloc, in-process)",
                "KiB/100 cycles",
                1,
            ),
            Measure(
                "agent_cpu_percent",
                "agent CPU during the soak (1 s interval, 1 scrape/s)",
                "% of a core",
                2,
            ),
        ),
    ),
    Section(
        "Exposition",
        (
            Measure("exposition_bytes", "default: text bytes", "bytes", 0),
            Measure("exposition_gzip_bytes", "default: gzip bytes", "bytes", 0),
            Measure("series", "default: series (non-comment lines)", "series", 0),
            Measure("families", "default: metric families", "families", 0),
            Measure("detail_exposition_bytes", "`detail: true`: text bytes", "bytes", 0),
            Measure("detail_exposition_gzip_bytes", "`detail: true`: gzip bytes", "bytes", 0),
            Measure("detail_series", "`detail: true`: series", "series", 0),
        ),
    ),
)
MEASURES = {measure.key: measure for section in SECTIONS for measure in section.measures}


DRIFT_LIMIT_MIB = 2e6 / 2**20  # the "drift under 2 MB"
LOAD_P99_LIMIT_MS = 50.0


@dataclass(frozen=True)
class Target:
    key: str
    scenario: str | None  # None: every scenario
    wanted: str
    verdict: Callable[[float], str]


def _at_most(limit: float, near: float | None = None) -> Callable[[float], str]:
    def verdict(value: float) -> str:
        if value <= limit:
            return "met"
        if near is not None and value <= near:
            return "near"
        return "MISSED"

    return verdict


TARGETS = (
    Target("scrape_seq_p50_ms", "h100-8", "≈ 1 ms", _at_most(1.0, near=1.5)),
    Target("scrape_seq_p50_ms", "h100-64", "a few ms (≤ 5 ms)", _at_most(5.0)),
    Target("rss_max_mib", None, "< 30 MiB", _at_most(30.0)),
    Target("rss_second_half_mib", None, "not growing (< 1 MiB)", _at_most(1.0)),
    Target("rss_drift_mib", None, "< 2 MB (1.91 MiB) over the soak", _at_most(DRIFT_LIMIT_MIB)),
    Target("retained_kib_per_100_cycles", None, "no leak (< 32 KiB/100 cycles)", _at_most(32.0)),
    Target("series", "h100-8", "≤ 600 series per 8-GPU node", _at_most(600)),
    Target("nvml_static_rereads", None, "0 static re-reads", _at_most(0)),
    Target("render_nvml_calls", None, "0 NVML calls per scrape", _at_most(0)),
)
