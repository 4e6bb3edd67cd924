"""Scraping a running agent the way Prometheus does, and looking series up by their labels."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import http_get

if TYPE_CHECKING:
    from conftest import AgentProcess

Labels = tuple[tuple[str, str], ...]
Series = dict[tuple[str, Labels], float]


def scrape(agent: AgentProcess) -> Series:
    """/metrics, which must answer 200 within a second, as {(name, sorted labels): value}."""
    began = time.monotonic()
    response = http_get(agent.port, "/metrics", timeout=2.0)
    assert response.status == 200
    assert time.monotonic() - began < 1.0, "a scrape never waits on the hardware"
    found: Series = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def matching(series: Series, name: str, **labels: str) -> dict[Labels, float]:
    """The series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return {found: v for (n, found), v in series.items() if n == name and wanted <= set(found)}


def value(series: Series, name: str, **labels: str) -> float | None:
    """The value of the first series of `name` whose labels include `labels`."""
    return next(iter(matching(series, name, **labels).values()), None)


def wait_for(
    agent: AgentProcess, check: Callable[[Series], bool], what: str, timeout: float = 8.0
) -> Series:
    """Scrape until `check` holds (every scrape must succeed); fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        series = scrape(agent)
        if check(series):
            return series
        assert time.monotonic() < deadline, f"never saw {what}; stderr:\n{agent.stderr()}"
        time.sleep(0.1)
