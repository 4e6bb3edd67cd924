"""Every NVML function the agent calls is listed once (agent/hw/nvml_functions.csv), and each
one listed is exercised through NVIDIA's binding and the fake C library."""

from __future__ import annotations

import inspect
import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.hw.nvml_functions import functions, unvalidated
from agent.hw.nvml_probe import RECIPES, run_child
from suanli_sim.binding import pynvml
from suanli_sim.cabi import library
from suanli_sim.cabi.header import header
from suanli_sim.cabi.nvml import CAbiNvml
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import load_scenario, parse_scenario
from tests.gpu_helpers import node

REPO = Path(__file__).resolve().parents[1]
# Older drivers and missing symbols: the agent's fallbacks are called only there.
FALLBACKS = """
name: fallbacks
driver_version: "525.105.17"
gpus: {model: H800-SXM5-80GB, count: 1}
faults:
  - kind: missing_functions
    functions: [nvmlDeviceGetPciInfo_v3, nvmlDeviceGetComputeRunningProcesses_v3,
                nvmlSystemGetCudaDriverVersion_v2]
"""
SCENARIOS = ["h100-8", "h100-mig", "a100-mig", "mixed-faults", "jobs-churn", FALLBACKS]


def _referenced() -> set[str]:
    """pynvml functions named anywhere in the agent's NVML modules (code, strings, docs)."""
    names: set[str] = set()
    for path in sorted((REPO / "agent" / "hw").glob("nvml*.py")):
        for name in re.findall(r"\bnvml[A-Z]\w*", path.read_text()):
            if inspect.isfunction(getattr(pynvml, name, None)):
                names.add(name)
    return names


@pytest.fixture(scope="module")
def agent_calls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Counter[str]]:
    """The pynvml functions the agent called over several scenarios, all through the C ABI."""
    called: Counter[str] = Counter()
    original = CAbiNvml._call

    def recording(self: CAbiNvml, function: Any, *args: Any, **kwargs: Any) -> Any:
        called[function.__name__] += 1
        return original(self, function, *args, **kwargs)

    CAbiNvml._call = recording  # type: ignore[method-assign]
    try:
        for i, scenario in enumerate(SCENARIOS):
            procfs = str(tmp_path_factory.mktemp(f"procfs{i}"))
            gpus = node(scenario, detail=True, jobs_procfs=procfs)
            for t in (0.0, 10.0, 20.0):
                gpus.at(t)
            gpus.close()
        yield called
    finally:
        CAbiNvml._call = original  # type: ignore[method-assign]


def test_every_function_the_agent_names_is_listed() -> None:
    unlisted = sorted(_referenced() - set(functions()))
    assert unlisted == [], f"add these to agent/hw/nvml_functions.csv: {unlisted}"


def test_every_function_the_agent_calls_is_listed(agent_calls: Counter[str]) -> None:
    unlisted = sorted(set(agent_calls) - set(functions()))
    assert unlisted == [], f"the agent called functions not in the list: {unlisted}"


def test_every_listed_symbol_is_declared_in_nvml_h() -> None:
    for name, function in functions().items():
        assert inspect.isfunction(getattr(pynvml, name, None)), name
        for symbol in function.c_symbols:
            assert symbol in header().prototypes, f"{name}: nvml.h has no {symbol}"


def test_every_listed_function_reaches_the_c_library(agent_calls: Counter[str]) -> None:
    """The agent's own runs, plus the probe child's recipes for the calls only old drivers
    or rare MIG names need, call every listed function's C symbol."""
    before = Counter(library.install().calls)
    for scenario in ("h100-mig", "h100-8"):
        nv = CAbiNvml(FakeNvml(load_scenario(scenario), clock=lambda: 30.0))
        run_child(nv, sorted(RECIPES), io.StringIO())
    reached = library.install().calls - before
    exercised = set(agent_calls) | set(RECIPES)
    assert set(functions()) <= exercised
    for name in set(RECIPES):
        assert any(reached[s] for s in functions()[name].c_symbols), name


def test_unvalidated_functions_have_a_probe_recipe_and_validated_ones_are_documented() -> None:
    assert unvalidated() <= set(RECIPES)
    doc = (REPO / "docs" / "hardware-validation.md").read_text()
    seen = doc.split("### NVML functions seen answering on real hardware", 1)[1]
    seen = seen.split("\n\n", 2)[1]  # the paragraph that lists them
    listed = set(re.findall(r"`(nvml\w+)`", seen))
    for name, function in functions().items():
        if name == "nvmlDeviceGetPcieThroughput":
            assert "GetPcieThroughput" in function.evidence  # the H200 latency capture
            continue
        assert function.validated == (name in listed), name


def test_the_fallbacks_scenario_is_an_old_driver() -> None:
    assert parse_scenario(FALLBACKS).driver_version.startswith("525.")
