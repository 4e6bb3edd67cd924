"""Cardinality budget of the metric contract: an 8-GPU node exposes at most 600 series by default.

At center scale (10,000 nodes x 8 GPUs) every series per node costs 10,000 series in Prometheus.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    import subprocess

    from conftest import AgentProcess

RunAgent = Callable[..., "subprocess.CompletedProcess[str]"]
StartAgent = Callable[..., "AgentProcess"]

SERIES_BUDGET = 600
GPUS = 8


def series(exposition: str) -> list[str]:
    """The series lines of a text exposition (everything but comments and blank lines)."""
    return [line for line in exposition.splitlines() if line.strip() and not line.startswith("#")]


def over_budget_report(lines: list[str]) -> str:
    by_family = Counter(re.split(r"[{ ]", line, maxsplit=1)[0] for line in lines)
    largest = ", ".join(f"{name} {n}" for name, n in by_family.most_common(12))
    return f"{len(lines)} series (budget {SERIES_BUDGET}); largest: {largest}"


def gpu_up_count(exposition: str) -> int:
    return sum(
        1
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "suanli_gpu_up" and sample.value == 1
    )


def test_default_h100_8_node_once_fits_the_series_budget(run_agent: RunAgent) -> None:
    result = run_agent("--fake", "h100-8", "--once")

    assert result.returncode == 0, result.stderr
    lines = series(result.stdout)
    assert gpu_up_count(result.stdout) == GPUS  # the budget is measured on a working node
    assert len(lines) >= GPUS * 10, "suspiciously few series: is the GPU collector exporting?"
    assert len(lines) <= SERIES_BUDGET, over_budget_report(lines)


def test_default_h100_8_node_fits_the_budget_once_rates_are_known(
    agent_process: StartAgent,
) -> None:
    # some families (GPM activity ratios, CPU power) need two samples: measure after a few cycles
    agent = agent_process("--fake", "h100-8", "--interval", "200ms")
    deadline = time.monotonic() + 10
    while True:
        health = agent.get("/healthz").text
        match = re.search(r"snapshot (\d+)", health)
        if match and int(match.group(1)) >= 4:
            break
        assert time.monotonic() < deadline, f"the sampler is not advancing: {health}"
        time.sleep(0.1)

    body = agent.get("/metrics").text
    lines = series(body)

    assert gpu_up_count(body) == GPUS
    assert len(lines) <= SERIES_BUDGET, over_budget_report(lines)
