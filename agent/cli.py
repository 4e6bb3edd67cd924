"""Command line: loading, logging, wiring, signals and exit codes. The only place that exits.

The flags themselves, and the configuration keys they override, are in `agent/cli_flags.py`.

Exit codes: 0 clean stop or `--once`/`--check-config` success, 1 cannot serve (port in use,
permission denied, bad address) or an unexpected internal error, 2 bad configuration or arguments
(any failure while reading them included), 3 `--once` printed its sample but a collector failed
in it (one line per failed collector on stderr). Every error is one line on stderr: `main` is the
one top-level guard, and no traceback leaves it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent import cli_flags, logs
from agent.config import (
    DEFAULT_CONFIG_PATH,
    Config,
    ConfigError,
    load,
    parse_duration,
    parse_listen_address,
    with_overrides,
)
from agent.reload import Loaded

if TYPE_CHECKING:
    from agent.app import Agent
    from agent.simulator import Simulation
    from agent.webconfig import WebConfig

log = logging.getLogger("agent")

EXIT_OK, EXIT_SERVE, EXIT_CONFIG, EXIT_COLLECTOR = 0, 1, 2, 3
ONCE_AT_S = 1.0  # --once under the simulator, without --at: one second into the scenario


def load_config(args: argparse.Namespace) -> tuple[Config, str]:
    """The file (explicit, or the default when present) with flags on top. Raises ConfigError."""
    path: Path | None = args.config
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    config = load(path) if path is not None else Config()
    return with_overrides(config, cli_flags.overrides(args)), str(path or "built-in defaults")


def load_web_config(args: argparse.Namespace) -> WebConfig | None:
    """The `--web-config` file, validated (certificates loaded), or None. Raises ConfigError."""
    if args.web_config is None:
        return None
    from agent import webconfig  # bcrypt, and ssl when TLS is on: only when asked for

    return webconfig.load(args.web_config)


def load_all(args: argparse.Namespace) -> Loaded:
    """Everything the flags name, validated: at start and on every SIGHUP.

    Raises ConfigError whose problems start with `config: ` or `web-config: `; an unexpected
    error while reading them is one such problem too (bad input must never stop the agent).
    """
    try:
        return _load_all(args)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError([f"config: cannot load: {_one_line(err)}"]) from None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())[:300]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _load_all(args: argparse.Namespace) -> Loaded:
    try:
        config, source = load_config(args)
    except ConfigError as err:
        raise ConfigError([f"config: {problem}" for problem in err.problems]) from None
    try:
        web = load_web_config(args)
        web_text = args.web_config.read_bytes() if web is not None else b""
    except ConfigError as err:
        raise ConfigError([f"web-config: {problem}" for problem in err.problems]) from None
    except OSError as err:
        raise ConfigError([f"web-config: {args.web_config}: {err.strerror}"]) from None
    if config.backend == "fake":  # the simulator is looked for only when it is asked for
        from agent.simulator import find

        try:
            find().check(config)
        except ConfigError as err:
            raise ConfigError([f"config: {problem}" for problem in err.problems]) from None
    return Loaded(config, web, source, web_text)


def simulated_start(args: argparse.Namespace, config: Config) -> float | None:
    """`--at` in seconds; `--once` under the simulator samples at 1s without it; None when the
    simulated clock is left alone. Raises ConfigError."""
    if args.at is None:
        return ONCE_AT_S if args.once and config.backend == "fake" else None
    try:
        at = parse_duration(args.at)
    except ValueError as err:
        raise ConfigError([f"config: --at: {err}"]) from None
    if config.backend != "fake":
        raise ConfigError(["config: --at: only with the simulated NVML (--fake SCENARIO)"])
    return at


def _build(config: Config, at: float | None) -> tuple[Agent, Simulation | None]:
    """The agent; over the simulator's node when the backend is `fake`."""
    if config.backend == "fake":
        from agent.simulator import find

        simulation = find().build(config, at)
        return simulation.agent, simulation
    from agent.app import build

    return build(config), None


def main(argv: list[str] | None = None) -> int:
    """The one top-level guard: an unexpected error is one line on stderr and exit 1."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before the signal handlers are installed (serving stops with 0)
        print("suanli-agent: interrupted", file=sys.stderr)
        return EXIT_SERVE
    except Exception as err:
        print(f"suanli-agent: unexpected error: {_one_line(err)}", file=sys.stderr)
        return EXIT_SERVE


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "simulate":  # the fleet simulator, found only when asked for
        return _simulate(argv[1:])
    if argv and argv[0] == "ledger":  # a summary of the job ledger (agent/ledger_cli.py)
        from agent.ledger_cli import main as ledger

        return ledger(argv[1:])
    args = cli_flags.parser().parse_args(argv)
    try:
        loaded = load_all(args)
        at = simulated_start(args, loaded.config)
    except ConfigError as err:
        for problem in err.problems:
            print(f"suanli-agent: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    config, web = loaded.config, loaded.web
    if args.check_config:
        return _check_config(args, loaded)
    logs.setup(config.log.level, config.log.format)
    if args.once:  # a look, beside a running agent: it must not move the daemon's cursor
        overrides = {"collectors.kmsg.state_file": "", "collectors.jobs.ledger": ""}
        overrides["collectors.jobs.state_file"] = ""  # nor write the daemon's job ledger
        config = with_overrides(config, overrides)
    agent, simulation = _build(config, at)
    if args.once:
        return _once(agent, simulation)
    if simulation is not None:
        simulation.start_serving()
    from agent.runner import run

    address = parse_listen_address(config.listen_address)
    return run(
        agent,
        address,
        web=web,
        reload=lambda: load_all(args),
        loaded=loaded,
        build=lambda new: _build(new, None)[0],
    )


def _check_config(args: argparse.Namespace, loaded: Loaded) -> int:
    """`--check-config`: the paths too (they exist, are readable, the right kind); 0 or 2."""
    from agent.config_paths import path_problems

    problems = path_problems(loaded.config)
    for problem in problems:
        print(f"suanli-agent: config: {problem}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    also = f", web config {args.web_config}" if loaded.web is not None else ""
    print(f"suanli-agent: configuration OK ({loaded.source}{also})")
    return EXIT_OK


def _simulate(argv: list[str]) -> int:
    from agent.simulator import find

    try:
        simulator = find()
    except ConfigError as err:
        print(f"suanli-agent: {err.problems[0]}", file=sys.stderr)
        return EXIT_CONFIG
    return simulator.main(argv)


def _once(agent: Agent, simulation: Simulation | None) -> int:
    """Print one sample (at the simulated time under `--fake`); 3 when a collector failed."""
    advance = simulation.prepare_once() if simulation is not None else None
    sys.stdout.write(agent.exposition(advance))
    sys.stdout.flush()
    failed = agent.failures()
    agent.sampler.stop()
    for result in failed:
        print(f"suanli-agent: collector {result.name} failed: {result.error}", file=sys.stderr)
    return EXIT_COLLECTOR if failed else EXIT_OK
