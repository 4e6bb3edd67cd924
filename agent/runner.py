"""The long-running agent: serve, sample, notify systemd, stop cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

from agent.app import Agent
from agent.server import AgentState, ServeError, listen, serve_in_thread
from agent.systemd import Notifier

if TYPE_CHECKING:
    from agent.webconfig import WebConfig

log = logging.getLogger("agent")

EXIT_OK, EXIT_SERVE = 0, 1


def run(
    agent: Agent,
    address: tuple[str, int],
    notifier: Notifier | None = None,
    web: WebConfig | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT; returns the process exit code."""
    notifier = notifier or Notifier()
    sampler = agent.sampler
    state = AgentState(agent.renderer, lambda: sampler.latest, sampler.health)
    for warning in web.warnings if web else ():
        log.warning("%s", warning)
    try:
        server = listen(address, state, web)
    except ServeError as err:
        log.error("%s", err)
        sampler.stop()
        return EXIT_SERVE
    stop = threading.Event()
    _install_signals(stop)
    sampler.sample_once()
    sampler.start(first_delay=sampler.interval)
    serve_in_thread(server)
    host, port = str(server.server_address[0]), server.server_address[1]
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    secured = ("" if server.scheme == "http" else " over TLS") + (
        " with basic auth" if server.auth else ""
    )
    log.info("serving metrics on %s%s every %.3gs", shown, secured, sampler.interval)
    notifier.ready()
    tick = (notifier.watchdog_interval or 2.0) / 2
    while not stop.wait(min(tick, 1.0)):
        if notifier.watchdog_interval and sampler.progressing():
            notifier.watchdog()
    notifier.stopping()
    server.shutdown()
    server.server_close()
    sampler.stop()
    log.info("stopped")
    return EXIT_OK


def _install_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
