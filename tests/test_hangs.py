"""An NVML call that hangs never blocks a scrape or silences the other collectors.

A call on one GPU's handle hangs only that GPU (tests/test_driver_faults.py); a call with no
GPU (here the device count, asked when NVML is discovered) hangs the GPU collector itself.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from agent.app import build
from agent.config import Config, with_overrides
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import parse_scenario
from suanli_sim.host import simulated_parts

HANGING = """
name: hanging-power-call
gpus: {model: H100-SXM5-80GB, count: 2, workload: training}
faults:
  - {kind: slow_call, functions: [nvmlDeviceGetCount], seconds: 30, at: 0}
"""


def test_a_hanging_nvml_call_ages_only_the_gpu_collector(tmp_path: Path) -> None:
    release = threading.Event()
    fake = FakeNvml(parse_scenario(HANGING), sleep=lambda seconds: release.wait(seconds))
    config = with_overrides(Config(), {"interval": "200ms"})
    agent = build(config, parts=simulated_parts(fake, tmp_path))
    try:
        started = time.monotonic()
        snapshot = agent.sampler.sample_once()
        assert time.monotonic() - started < 0.6, "the sampling deadline bounds the cycle"
        results = {r.name: r for r in snapshot.results}
        assert results["host"].success and results["host"].samples
        assert not results["gpu"].success
        assert "still running" in (results["gpu"].error or "")
        body, _ = agent.renderer.render(snapshot)
        text = body.decode()
        assert 'suanli_collector_success{collector="gpu"} 0.0' in text
        assert "suanli_cpu_seconds_total" in text
        for _ in range(3):
            agent.sampler.sample_once()
        healthy, why = agent.sampler.health()
        assert not healthy and "collector gpu" in why
        assert not agent.sampler.progressing()
    finally:
        release.set()
        agent.sampler.stop()
