"""Every measurement of one scenario, flattened into the `metrics` that `results.json` records:
in-process cycles, renders, profiles, GPU reads at H200 latencies and retained memory, then
scrapes, soak figures and exposition size from the real agent process."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import driver_time, inprocess, profiles, retained, scrape
from benchmarks.agent_process import AgentProcess

CLIENTS = 8
CYCLE_DEADLINE = "10s"
DRIVER_CYCLES = 10  # GPU reads at H200 latency per mode (h100-64: about 1 s each, one by one)
DETAIL_CONFIG = "collectors:\n  gpu:\n    detail: true\n"


@dataclass(frozen=True)
class Counts:
    requests: int
    cycles: int
    render_repeats: int
    profile_repeats: int
    retained_gpu_cycles: int  # tracemalloc stretch length, in GPU-cycles (8 GPUs x 200 cycles)

    def retained_cycles(self, gpus: int) -> int:
        return max(5, self.retained_gpu_cycles // gpus)


FULL = Counts(
    requests=1000, cycles=100, render_repeats=30, profile_repeats=20, retained_gpu_cycles=1600
)
QUICK = Counts(requests=200, cycles=10, render_repeats=5, profile_repeats=3, retained_gpu_cycles=80)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- in-process -----------------------------------------------------------------------------


def in_process(scenario: str, counts: Counts, show_profile: bool) -> dict[str, Any]:
    # the interval is only sample_once's deadline here: procs-500's first cycle (500 processes
    # discovered) nears 1 s on a busy 2-core machine
    agent, fake = inprocess.build_fake(scenario, interval=CYCLE_DEADLINE)
    try:
        say(f"{scenario}: {counts.cycles} sampling cycles in-process")
        cycles = inprocess.measure_cycles(agent, fake, counts.cycles)
        render = inprocess.measure_render(agent, fake, counts.render_repeats)
        say(f"{scenario}: profiling collect() and the first render")
        cycle_profile = profiles.profile_cycle(agent, counts.profile_repeats)
        render_profile = profiles.profile_first_render(agent, counts.profile_repeats)
    finally:
        agent.sampler.stop()
    say(f"{scenario}: GPU read cycles at an H200's call latencies")
    driver = driver_time.measure(scenario, cycles=DRIVER_CYCLES)
    say(f"{scenario}: memory retained across cycles (tracemalloc)")
    kept = retained.measure_retained(
        scenario, warmup=10, cycles=counts.retained_cycles(cycles.gpus)
    )
    if show_profile:
        print_profile(f"{scenario} collect()", cycle_profile)
        print_profile(f"{scenario} first render", render_profile)
    return {
        "metrics": {
            **cycle_metrics(cycles, cycle_profile),
            **render_metrics(render),
            "retained_kib_per_100_cycles": kept.kib_per_100_cycles,
            **driver,
        },
        "retained_top_site": kept.top_site,
        "nvml_first": cycles.calls_first,
        "nvml_steady": cycles.calls_steady,
        "profile_cycle": _rounded(cycle_profile.shares),
        "profile_render": _rounded(render_profile.shares),
    }


def _rounded(shares: dict[str, float]) -> dict[str, float]:
    return {name: round(share, 2) for name, share in shares.items()}


def cycle_metrics(cycles: inprocess.Cycles, profile: profiles.Profile) -> dict[str, float]:
    return {
        "gpus": cycles.gpus,
        "cycle_first_wall_ms": cycles.first_wall_ms,
        "cycle_first_cpu_ms": cycles.first_cpu_ms,
        "cycle_wall_ms": cycles.wall_ms,
        "cycle_cpu_ms": cycles.cpu_ms,
        "cycle_cpu_ms_agent_only": cycles.cpu_ms * (1 - profile.fake_percent / 100),
        "cycle_gpu_collector_ms": cycles.collector_ms.get("gpu", 0.0),
        "cycle_host_collector_ms": cycles.collector_ms.get("host", 0.0),
        "nvml_calls_per_gpu_first": cycles.calls_per_gpu_first,
        "nvml_calls_per_gpu_cycle": cycles.calls_per_gpu_cycle,
        "nvml_static_rereads": cycles.static_rereads,
    }


def render_metrics(render: inprocess.Render) -> dict[str, float]:
    return {
        "render_first_ms": render.first_ms,
        "render_cached_us": render.cached_us,
        "render_gzip_extra_ms": render.gzip_extra_ms,
        "render_openmetrics_first_ms": render.openmetrics_first_ms,
        "render_nvml_calls": render.nvml_calls,
    }


def print_profile(title: str, profile: profiles.Profile) -> None:
    print(f"\n{title}: top functions by own time (fake share {profile.fake_percent:.1f}%)")
    for name, share, calls in profile.top:
        print(f"  {share:5.1f}%  {calls:>9,}  {name}")


# --- the agent process ----------------------------------------------------------------------


def over_http(scenario: str, counts: Counts, soak: scrape.Soak) -> dict[str, float]:
    with AgentProcess(scenario) as agent:
        say(f"{scenario}: {counts.requests} sequential, gzip and {CLIENTS}-client scrapes")
        plain = scrape.sequential(agent.port, counts.requests)
        packed = scrape.sequential(agent.port, counts.requests, scrape.GZIP)
        parallel = scrape.concurrent(agent.port, counts.requests, CLIENTS)
        after_load = agent.rss_mib()
        payload = scrape.payload(agent.port)
    return {
        **latency_metrics("scrape_seq", plain),
        **latency_metrics("scrape_gzip", packed),
        **latency_metrics("scrape_conc", parallel),
        **soak_metrics(soak),
        "rss_after_load_mib": after_load,
        **payload_metrics("", payload),
    }


def latency_metrics(prefix: str, latency: scrape.Latency) -> dict[str, float]:
    return {
        f"{prefix}_p50_ms": latency.p50_ms,
        f"{prefix}_p99_ms": latency.p99_ms,
        f"{prefix}_rps": latency.per_second,
    }


def soak_metrics(soak: scrape.Soak) -> dict[str, float]:
    return {
        "rss_start_mib": soak.rss_start_mib,
        "rss_soak_end_mib": soak.rss_end_mib,
        "rss_drift_mib": soak.rss_end_mib - soak.rss_start_mib,
        "rss_drift_after_minute_mib": soak.rss_end_mib - soak.rss_minute_mib,
        "rss_second_half_mib": soak.rss_end_mib - soak.rss_mid_mib,
        "rss_max_mib": soak.rss_max_mib,
        "agent_cpu_percent": soak.cpu_percent,
    }


def payload_metrics(prefix: str, payload: scrape.Payload) -> dict[str, float]:
    found: dict[str, float] = {
        f"{prefix}exposition_bytes": payload.plain_bytes,
        f"{prefix}exposition_gzip_bytes": payload.gzip_bytes,
        f"{prefix}series": payload.series,
    }
    if not prefix:
        found["families"] = payload.families
    return found


def detail_payload(scenario: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="suanli-bench-") as folder:
        config = Path(folder) / "detail.yaml"
        config.write_text(DETAIL_CONFIG, encoding="utf-8")
        with AgentProcess(scenario, config=config) as agent:
            return payload_metrics("detail_", scrape.payload(agent.port))


# --- the run --------------------------------------------------------------------------------


def bench(scenario: str, counts: Counts, soak: scrape.Soak, show_profile: bool) -> dict[str, Any]:
    result = in_process(scenario, counts, show_profile)
    result["metrics"].update(over_http(scenario, counts, soak))
    say(f"{scenario}: exposition with collectors.gpu.detail: true")
    result["metrics"].update(detail_payload(scenario))
    return result
