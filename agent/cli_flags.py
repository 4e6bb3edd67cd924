"""The command line's flags, and the configuration keys they override."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config import DEFAULT_CONFIG_PATH, LOG_FORMATS, LOG_LEVELS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="suanli-agent",
        allow_abbrev=False,
        description="Suanli: GPU and CPU metrics of this node for Prometheus (NVML + psutil).",
        epilog="other commands: 'suanli-agent simulate ...' serves a simulated fleet of nodes "
        "(see 'suanli-agent simulate --help'); 'suanli-agent ledger FILE' sums the job ledger "
        "(see 'suanli-agent ledger --help').",
    )
    _mode_flags(p)
    _serving_flags(p)
    _simulator_flags(p)
    p.add_argument(
        "--web-config",
        metavar="FILE",
        type=Path,
        help="TLS, client certificates and basic auth, in the exporter-toolkit web config "
        "format node_exporter reads with --web.config.file",
    )
    p.add_argument("--version", action="version", version=f"suanli-agent {__version__}")
    return p


def _mode_flags(p: argparse.ArgumentParser) -> None:
    """The configuration file, and whether to serve, check it or take one sample."""
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
        help="take one sample, print the exposition text on stdout and exit: 0, or 3 when a "
        "collector failed in it",
    )


def _serving_flags(p: argparse.ArgumentParser) -> None:
    """Flags that stand for a configuration key (see `overrides`)."""
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
        "--dcgm-compat",
        action="store_true",
        default=None,
        help="also export dcgm-exporter's metric names (DCGM_FI_...) beside the native ones, "
        "as exposition.dcgm_compat does",
    )


def _simulator_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fake",
        metavar="SCENARIO",
        help="use the simulated NVML: a built-in scenario name (h100-8, a100-mig, "
        "mixed-faults, ...) or a scenario YAML file",
    )
    p.add_argument(
        "--at",
        metavar="DURATION",
        help='with --fake: simulated time such as "90s" at which --once samples (default 1s); '
        "serving, the simulated clock starts there",
    )


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration keys the flags given set, dotted (`log.level`), for `with_overrides`."""
    flags = {
        "listen_address": args.listen_address,
        "interval": args.interval,
        "log.level": args.log_level,
        "log.format": args.log_format,
        "exposition.dcgm_compat": args.dcgm_compat,
    }
    found = {key: value for key, value in flags.items() if value is not None}
    if args.fake is not None:
        found.update({"backend": "fake", "fake_scenario": args.fake})
    return found
