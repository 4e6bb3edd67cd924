"""SIGHUP: re-read the configuration and swap in a new agent, or keep the old one and say why.

A reload re-reads `--config` (and `--web-config`), applies the flags on top again, and when the
result is valid builds new collectors, sampler and renderer, takes their first sample, swaps
them into the HTTP server's `AgentState` in one assignment, and stops the old sampler (which
closes NVML). Scrapes never wait: until the swap they are answered from the old agent.

The listen address and the web config (TLS, basic auth) belong to the listening socket: a change
to either is logged as needing a restart and the old one is kept. An invalid configuration is
refused with one log line per problem and the old agent keeps serving. A reload never stops
the agent: any exception while loading, building or swapping in the new agent is refused the
same way. Outcomes are exported as `suanli_config_last_reload_successful`,
`..._success_timestamp_seconds` and the count `suanli_config_reloads_failed_total`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent import logs
from agent.config import Config, ConfigError
from agent.metrics import MetricSpec, Sample

if TYPE_CHECKING:  # the CLI imports Loaded for --check-config: keep this module light
    from agent.app import Agent
    from agent.exposition import ExtraSource
    from agent.server import AgentState
    from agent.webconfig import WebConfig

log = logging.getLogger("agent")

RELOAD_SUCCESSFUL = MetricSpec(
    "suanli_config_last_reload_successful",
    "gauge",
    "1 when the last configuration load (at start or on SIGHUP) succeeded, else 0.",
)
RELOAD_SUCCESS_TIMESTAMP = MetricSpec(
    "suanli_config_last_reload_success_timestamp_seconds",
    "gauge",
    "Unix time of the last successful configuration load (at start or on SIGHUP).",
)
RELOADS_FAILED = MetricSpec(
    "suanli_config_reloads_failed_total",
    "counter",
    "Configuration reloads (SIGHUP) refused since the agent started; the running configuration "
    "was kept each time.",
)
RELOAD_SPECS = (RELOAD_SUCCESSFUL, RELOAD_SUCCESS_TIMESTAMP, RELOADS_FAILED)


@dataclass(frozen=True)
class Loaded:
    """A validated configuration: the file with flags on top, the web config and its text."""

    config: Config
    web: WebConfig | None
    source: str
    web_text: bytes = b""


Loader = Callable[[], Loaded]
Builder = Callable[[Config], "Agent"]  # a configuration -> the agent it describes


class ReloadStatus:
    """The outcome of the last load and the count of refused ones, as `suanli_config_*`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.failed = 0
        self._samples = self._make(True, clock())

    def record(self, successful: bool) -> None:
        stamp = self._clock() if successful else self._samples[1].value
        self.failed += 0 if successful else 1
        self._samples = self._make(successful, stamp)

    def samples(self) -> tuple[Sample, ...]:
        return self._samples

    def _make(self, successful: bool, stamp: float) -> tuple[Sample, ...]:
        return (
            Sample(RELOAD_SUCCESSFUL, (), 1.0 if successful else 0.0),
            Sample(RELOAD_SUCCESS_TIMESTAMP, (), stamp),
            Sample(RELOADS_FAILED, (), float(self.failed)),
        )


class Reloader:
    """Holds the agent being served and replaces it on `reload()` (called from the main thread)."""

    def __init__(
        self,
        load: Loader,
        loaded: Loaded,
        agent: Agent,
        state: AgentState,
        build: Builder | None = None,
    ) -> None:
        self._load = load
        self._build = build
        self._loaded = loaded
        self.agent = agent
        self._state = state
        self.status = ReloadStatus()
        # more series every agent's renderer exports (the HTTP server's): kept across reloads
        self.attached: list[tuple[tuple[MetricSpec, ...], ExtraSource]] = [
            (RELOAD_SPECS, self.status.samples)
        ]
        agent.renderer.attach(RELOAD_SPECS, self.status.samples)

    def attach(self, specs: tuple[MetricSpec, ...], source: ExtraSource) -> None:
        """Export `source`'s series from this agent's renderer and every later one."""
        self.attached.append((specs, source))
        self.agent.renderer.attach(specs, source)

    def reload(self) -> bool:
        """Re-read and apply the configuration; False (old agent kept) when it is refused."""
        try:
            return self._reload()
        except ConfigError as err:
            return self._refuse(err.problems)
        except Exception as err:  # whatever it is, the running configuration stays
            return self._refuse([" ".join(f"{type(err).__name__}: {err}".split())[:300]])

    def _reload(self) -> bool:
        loaded = self._load()
        config = self._keep_socket_settings(loaded)
        from agent.app import build

        new = (self._build or build)(config)
        try:
            for specs, source in self.attached:
                new.renderer.attach(specs, source)
            new.sampler.sample_once()
        except Exception:
            new.sampler.stop()
            raise
        logs.setup(config.log.level, config.log.format)
        self._swap(new)
        self._loaded = dataclasses.replace(loaded, config=config, web=self._loaded.web)
        log.info(
            "reloaded the configuration from %s: every %.3gs, %d collectors",
            loaded.source,
            new.sampler.interval,
            len(new.collectors),
        )
        return True

    def _refuse(self, problems: list[str]) -> bool:
        for problem in problems:
            log.error("reload refused: %s", problem)
        self.status.record(False)
        return False

    def _keep_socket_settings(self, loaded: Loaded) -> Config:
        """The new config with the old listen address: the socket is not reopened."""
        old = self._loaded
        if loaded.web_text != old.web_text:
            log.warning("reload: the web config changed; restart the agent to apply it")
        if loaded.config.listen_address == old.config.listen_address:
            return loaded.config
        log.warning(
            "reload: listen_address changed from %r to %r; restart the agent to apply it",
            old.config.listen_address,
            loaded.config.listen_address,
        )
        return dataclasses.replace(loaded.config, listen_address=old.config.listen_address)

    def _swap(self, new: Agent) -> None:
        """Publish (first sample taken) in one assignment, start, then stop the old sampler."""
        sampler = new.sampler
        self.status.record(True)
        self._state.swap(new.renderer, lambda: sampler.latest, sampler.health)
        sampler.start(first_delay=sampler.interval)
        old, self.agent = self.agent, new
        old.sampler.stop()  # closes NVML; a collector stuck in a hung call is left alone
