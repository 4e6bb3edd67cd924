"""The long-running agent: serve, sample, notify systemd, stop cleanly on SIGTERM/SIGINT and
reload the configuration on SIGHUP (agent.reload)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

from agent.allocator import Allocator
from agent.app import Agent
from agent.http_stats import HTTP_SPECS, HttpStats
from agent.reload import Builder, Loaded, Loader, Reloader
from agent.server import AgentHTTPServer, AgentState, ServeError, listen, serve_in_thread
from agent.systemd import Notifier

if TYPE_CHECKING:
    from agent.sampler import Sampler
    from agent.webconfig import WebConfig

log = logging.getLogger("agent")

EXIT_OK, EXIT_SERVE = 0, 1


class _Signals:
    """What the signal handlers asked for; `wake` interrupts the main loop's wait."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.stop = False
        self.reload = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self.stop = True
        self.wake.set()

    def _reload(self, signum: int, frame: FrameType | None) -> None:
        self.reload = True
        self.wake.set()


def run(
    agent: Agent,
    address: tuple[str, int],
    notifier: Notifier | None = None,
    web: WebConfig | None = None,
    reload: Loader | None = None,
    loaded: Loaded | None = None,
    build: Builder | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT; returns the process exit code.

    With `reload` (and `loaded`, what it returned at start), SIGHUP re-reads the configuration
    and `build` (default `agent.app.build`) makes the agent it describes.
    """
    notifier = notifier or Notifier()
    sampler = agent.sampler
    state = AgentState(agent.renderer, lambda: sampler.latest, sampler.health)
    loaded = loaded or Loaded(agent.config, web, "the start")
    reloader = Reloader(reload or (lambda: loaded), loaded, agent, state, build)
    for warning in web.warnings if web else ():
        log.warning("%s", warning)
    try:
        server = _listen(address, state, web, reloader)
    except ServeError as err:
        log.error("%s", err)
        sampler.stop()
        return EXIT_SERVE
    signals = _Signals()
    signals.install()
    allocator = Allocator.of_this_process()
    allocator.tune()
    _start(sampler, server, notifier)
    _loop(signals, reloader, notifier, allocator)
    notifier.stopping()
    server.shutdown()
    server.server_close()
    reloader.agent.sampler.stop()
    log.info("stopped")
    return EXIT_OK


def _start(sampler: Sampler, server: AgentHTTPServer, notifier: Notifier) -> None:
    """The first sample, then sampling on its interval and serving; then tell systemd."""
    sampler.sample_once()
    sampler.start(first_delay=sampler.interval)
    serve_in_thread(server)
    _log_serving(server, sampler.interval)
    notifier.ready()


def _listen(
    address: tuple[str, int], state: AgentState, web: WebConfig | None, reloader: Reloader
) -> AgentHTTPServer:
    """The server, its `suanli_http_*` series exported by every agent the reloader serves."""
    stats = HttpStats(period=reloader.agent.sampler.interval)
    reloader.attach(HTTP_SPECS, stats.samples)
    return listen(address, state, web, stats=stats)


def _loop(signals: _Signals, reloader: Reloader, notifier: Notifier, allocator: Allocator) -> None:
    tick = min((notifier.watchdog_interval or 2.0) / 2, 1.0)
    while not signals.stop:
        signals.wake.wait(tick)
        signals.wake.clear()
        allocator.trim_if_due(time.monotonic())
        if signals.reload and not signals.stop:
            signals.reload = False
            log.info("received SIGHUP, reloading the configuration")
            reloader.reload()
        if notifier.watchdog_interval and reloader.agent.sampler.progressing():
            notifier.watchdog()


def _log_serving(server: AgentHTTPServer, interval: float) -> None:
    host, port = str(server.server_address[0]), server.server_address[1]
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    secured = ("" if server.scheme == "http" else " over TLS") + (
        " with basic auth" if server.auth else ""
    )
    log.info("serving metrics on %s%s every %.3gs", shown, secured, interval)
