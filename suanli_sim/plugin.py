"""What `suanli-agent` finds by its entry point (`agent.simulator`): the agent over a simulated
node for `--fake SCENARIO [--at T]`, and the fleet simulator for `suanli-agent simulate`.

`--at` holds the fake NVML's clock at a simulated time: the node is sampled once at 0 (every GPU
found and registered for XID events), then the clock jumps, and the agent waits until its XID
listener has taken every event due by then, so the sample shows them.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.app import Agent, build
from agent.config import Config, ConfigError
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import ScenarioError, load_scenario
from suanli_sim.host import simulated_parts

XID_SETTLE_S = 1.0  # the longest wait for the XID listener to take the events due


class SimClock:
    """The fake NVML's clock for `--at`: held at a simulated time, or running on from it."""

    def __init__(self) -> None:
        self._state: tuple[float, float | None] = (0.0, None)  # (t, real time it ran from)

    def __call__(self) -> float:
        t, since = self._state
        return t if since is None else t + time.monotonic() - since

    def hold(self, t: float) -> None:
        self._state = (t, None)

    def run(self) -> None:
        self._state = (self(), time.monotonic())


def jump(nvml: FakeNvml, clock: SimClock, t: float, timeout: float = XID_SETTLE_S) -> None:
    """Hold the fake's clock at `t`, then wait (at most `timeout`) until the XID listener has
    taken every event due by then: no event set has one pending, and the listener has asked
    for another since it took the last (so it counted it)."""
    waits, (_, delivered) = _waits(nvml), nvml.event_hub.due(t)
    clock.hold(t)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending, now = nvml.event_hub.due(t)
        if not pending and _waits(nvml) >= waits + now - delivered:
            return
        time.sleep(0.01)


def _waits(nvml: FakeNvml) -> int:
    return int(nvml.calls["nvmlEventSetWait_v2"] + nvml.calls["nvmlEventSetWait"])


@dataclass
class FakeNode:
    """An agent over one simulated node; `at`: where its held clock starts (None: it runs)."""

    agent: Agent
    nvml: FakeNvml
    clock: SimClock | None
    at: float | None

    def prepare_once(self) -> Callable[[float], None] | None:
        if self.clock is None or self.at is None:
            return None
        clock, at = self.clock, self.at
        if at > self.agent.GPM_WINDOW_S:
            self.agent.sampler.sample_once()  # at 0: every GPU found, registered for XIDs
            clock.hold(at - self.agent.GPM_WINDOW_S)
        return lambda _: jump(self.nvml, clock, at)

    def start_serving(self) -> None:
        if self.clock is not None and self.at is not None:
            self.agent.sampler.sample_once()  # at 0: every GPU found, registered for XIDs
            jump(self.nvml, self.clock, self.at)
            self.clock.run()


class Simulator:
    """The `agent.simulator.Simulator` this package provides."""

    def check(self, config: Config) -> None:
        try:
            load_scenario(config.fake_scenario)
        except ScenarioError as err:
            raise ConfigError([f"fake_scenario: {err}"]) from None

    def build(self, config: Config, at: float | None) -> FakeNode:
        clock = SimClock() if at is not None else None
        nvml = FakeNvml(load_scenario(config.fake_scenario), clock=clock)
        root = tempfile.mkdtemp(prefix="suanli-fake-host-")
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        agent = build(config, parts=simulated_parts(nvml, Path(root)))
        return FakeNode(agent, nvml, clock, at)

    def main(self, argv: list[str]) -> int:
        from suanli_sim.fleet.cli import main

        return main(argv)


SIMULATOR = Simulator()
