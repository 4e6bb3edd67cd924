"""Command line: arguments, logging, wiring, signals and exit codes. The only place that exits.

Exit codes: 0 clean stop or `--once`/`--check-config` success, 1 cannot serve (port in use,
permission denied, bad address), 2 bad configuration or arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import __version__, logs
from agent.config import (
    DEFAULT_CONFIG_PATH,
    LOG_FORMATS,
    LOG_LEVELS,
    Config,
    ConfigError,
    load,
    parse_listen_address,
    with_overrides,
)
from agent.reload import Loaded

if TYPE_CHECKING:
    from agent.webconfig import WebConfig

log = logging.getLogger("agent")

EXIT_OK, EXIT_SERVE, EXIT_CONFIG = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="suanli-agent",
        allow_abbrev=False,
        description="Suanli: GPU and CPU metrics of this node for Prometheus (NVML + psutil).",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help=f"YAML configuration file (default {DEFAULT_CONFIG_PATH} when present)",
    )
    p.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration, print every problem, exit 0 or 2",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="take one sample, print the exposition text on stdout and exit",
    )
    p.add_argument(
        "--listen-address",
        metavar="HOST:PORT",
        help='address to serve on (default ":9445", every interface)',
    )
    p.add_argument(
        "--interval",
        metavar="DURATION",
        help='sampling interval such as "5s" or "500ms" (default 5s)',
    )
    p.add_argument("--log-level", choices=LOG_LEVELS, help="log level (default info)")
    p.add_argument("--log-format", choices=LOG_FORMATS, help="text or json lines (default text)")
    p.add_argument(
        "--fake",
        metavar="SCENARIO",
        help="use the simulated NVML: a built-in scenario name (h100-8, a100-mig, "
        "mixed-faults, ...) or a scenario YAML file",
    )
    p.add_argument(
        "--web-config",
        metavar="FILE",
        type=Path,
        help="TLS, client certificates and basic auth, in the exporter-toolkit web config "
        "format node_exporter reads with --web.config.file",
    )
    p.add_argument("--version", action="version", version=f"suanli-agent {__version__}")
    return p


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    flags = {
        "listen_address": args.listen_address,
        "interval": args.interval,
        "log.level": args.log_level,
        "log.format": args.log_format,
    }
    found = {key: value for key, value in flags.items() if value is not None}
    if args.fake is not None:
        found.update({"backend": "fake", "fake_scenario": args.fake})
    return found


def load_config(args: argparse.Namespace) -> tuple[Config, str]:
    """The file (explicit, or the default when present) with flags on top. Raises ConfigError."""
    path: Path | None = args.config
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    config = load(path) if path is not None else Config()
    return with_overrides(config, _overrides(args)), str(path or "built-in defaults")


def load_web_config(args: argparse.Namespace) -> WebConfig | None:
    """The `--web-config` file, validated (certificates loaded), or None. Raises ConfigError."""
    if args.web_config is None:
        return None
    from agent import webconfig  # bcrypt, and ssl when TLS is on: only when asked for

    return webconfig.load(args.web_config)


def load_all(args: argparse.Namespace) -> Loaded:
    """Everything the flags name, validated: at start and on every SIGHUP.

    Raises ConfigError whose problems start with `config: ` or `web-config: `.
    """
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
    if config.backend == "fake":  # the simulator is imported only when it is asked for
        from agent.hw.fake_scenario import ScenarioError, load_scenario

        try:
            load_scenario(config.fake_scenario)
        except ScenarioError as err:
            raise ConfigError([f"config: fake_scenario: {err}"]) from None
    return Loaded(config, web, source, web_text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "simulate":  # the fleet simulator, imported only when asked for
        from agent.simulate.cli import main as simulate

        return simulate(argv[1:])
    args = parser().parse_args(argv)
    try:
        loaded = load_all(args)
    except ConfigError as err:
        for problem in err.problems:
            print(f"suanli-agent: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    config, web = loaded.config, loaded.web
    if args.check_config:
        also = f", web config {args.web_config}" if web is not None else ""
        print(f"suanli-agent: configuration OK ({loaded.source}{also})")
        return EXIT_OK
    logs.setup(config.log.level, config.log.format)
    from agent.app import build

    agent = build(config)
    if args.once:
        sys.stdout.write(agent.exposition())
        agent.sampler.stop()
        return EXIT_OK
    from agent.runner import run

    address = parse_listen_address(config.listen_address)
    return run(agent, address, web=web, reload=lambda: load_all(args), loaded=loaded)
