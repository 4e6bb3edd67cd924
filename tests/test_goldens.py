"""Golden expositions: each built-in scenario at a fixed simulated time, byte for byte.

Regenerate with `pytest tests/test_goldens.py --update-goldens` after an intended change, and
review the diff: it is exactly what operators' dashboards will see change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.exposition import render_text
from suanli_sim.fake_scenario import builtin_scenarios
from tests.gpu_helpers import node

GOLDENS = Path(__file__).parent / "goldens"
WARM_UP, GOLDEN_TIME = 0.0, 120.0


def exposition(scenario: str) -> str:
    gpus = node(scenario, xid_events=False)  # XIDs arrive on a thread: tested in test_xid.py
    gpus.at(WARM_UP)  # a running agent has seen every GPU before any fault of the scenario
    gpus.clock.t = GOLDEN_TIME
    samples = gpus.collector.collect()
    return render_text(gpus.collector.specs(), samples).decode()


@pytest.mark.parametrize("scenario", builtin_scenarios())
def test_exposition_matches_the_golden_file(scenario: str, request: pytest.FixtureRequest) -> None:
    text = exposition(scenario)
    golden = GOLDENS / f"{scenario}.prom"
    if request.config.getoption("--update-goldens"):
        golden.write_text(text)
    assert golden.exists(), f"no golden for {scenario}: run pytest --update-goldens"
    assert text == golden.read_text(), f"{golden.name} is stale: run pytest --update-goldens"


def test_every_golden_belongs_to_a_scenario() -> None:
    stale = {p.stem for p in GOLDENS.glob("*.prom")} - set(builtin_scenarios())
    assert not stale, f"goldens without a scenario: {sorted(stale)}"


def test_goldens_are_deterministic() -> None:
    assert exposition("h100-8") == exposition("h100-8")
