"""The door to the simulator, which lives in a package of its own that imports the agent and is
never imported by it: the CLI finds it by its entry point, only when `--fake` or `simulate` asks
for it, and talks to it through the `Simulator` protocol below."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

from agent.config import Config, ConfigError

if TYPE_CHECKING:
    from agent.app import Agent

ENTRY_POINT_GROUP = "suanli_agent.simulator"


class Simulation(Protocol):
    """One agent built over a simulated node."""

    agent: Agent

    def prepare_once(self) -> Callable[[float], None] | None:
        """Bring the node to when `--once` samples; what moves it between GPM's two samples."""
        ...

    def start_serving(self) -> None:
        """Set the simulated clock running before the agent serves."""
        ...


class Simulator(Protocol):
    def check(self, config: Config) -> None:
        """Raise ConfigError (one line per problem) when `config.fake_scenario` cannot be run."""
        ...

    def build(self, config: Config, at: float | None) -> Simulation:
        """The agent over the scenario's node; `at`: the simulated time to hold the clock at."""
        ...

    def main(self, argv: list[str]) -> int:
        """`suanli-agent simulate ...`: the fleet simulator's own command line."""
        ...


def find() -> Simulator:
    """The installed simulator. Raises ConfigError when none is installed."""
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found: Simulator = entry.load()
        return found
    raise ConfigError(
        ["the simulator is not installed (package suanli_sim; pip install the repository)"]
    )
