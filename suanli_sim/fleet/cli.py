"""`suanli-agent simulate`: serve a fleet of simulated nodes, one loopback port each.

    suanli-agent simulate --nodes 1000 --base-port 20000 --file-sd /tmp/sim/targets.json

Exit status: 0 after SIGTERM or SIGINT; 2 for bad arguments, a port that cannot be listened on
or too few file descriptors (one line on stderr, no traceback); 1 when a worker process dies.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TypeVar

from agent import logs
from agent.config import LOG_LEVELS, parse_duration
from suanli_sim.fleet.filesd import write_file_sd
from suanli_sim.fleet.fleet import dump_scenarios, plan_fleet, summary
from suanli_sim.fleet.mix import DECK, parse_mix
from suanli_sim.fleet.runtime import BindError, bind_ports, run_nodes
from suanli_sim.fleet.scenarios import NodePlan, plural
from suanli_sim.fleet.topology import Layout, layout
from suanli_sim.fleet.workers import Workers

log = logging.getLogger("suanli_sim.fleet")
T = TypeVar("T")
PROG = "suanli-agent simulate"
EXIT_OK, EXIT_WORKER, EXIT_USAGE = 0, 1, 2
FDS_PER_NODE = 2  # its listening socket and its scraper's keep-alive connection
FDS_SPARE = 256
NODES_PER_WORKER = 500  # --workers auto: one process per this many nodes, up to the CPUs


class UsageError(Exception):
    """A problem with the arguments or the machine: one line."""


@dataclass(frozen=True)
class Settings:
    nodes: int
    host: str
    base_port: int
    interval: float
    seed: int
    fleet: Layout
    deck: dict[str, int]
    file_sd: Path
    workers: int

    @property
    def target_host(self) -> str:
        """The address Prometheus should scrape: loopback for an any-address listener."""
        return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, allow_abbrev=False, description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, required=True, help="how many nodes to simulate")
    p.add_argument("--base-port", type=int, default=20000, help="node i listens on BASE+i")
    p.add_argument("--listen-address", default="127.0.0.1", metavar="HOST", help="(127.0.0.1)")
    p.add_argument("--file-sd", type=Path, default=Path("simulated-targets.json"), metavar="PATH")
    p.add_argument("--interval", default="15s", help="sampling interval per node (15s)")
    p.add_argument("--seed", type=int, default=1, help="the fleet is a function of the seed")
    p.add_argument("--cluster", default="zjk-sim", help="cluster label (zjk-sim)")
    p.add_argument("--halls", type=int, help="halls (default: as many as the racks need)")
    p.add_argument("--racks-per-hall", type=int, help="racks per hall (default 25)")
    p.add_argument("--nodes-per-rack", type=int, help="nodes per rack (default 4)")
    roles = ",".join(f"{role}={count}" for role, count in DECK.items())
    p.add_argument("--mix", default="", metavar="ROLE=N,...", help=f"nodes per deck ({roles})")
    p.add_argument("--workers", default="auto", help="processes (auto: one per 500 nodes)")
    p.add_argument("--dump-scenarios", type=Path, metavar="DIR", help="write each node's YAML")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    return p


def settings(args: argparse.Namespace) -> Settings:
    """Validated settings; raises UsageError with one line."""
    interval = _checked("--interval", parse_duration, args.interval)
    deck = _checked("--mix", parse_mix, args.mix)
    sizes = (args.halls, args.racks_per_hall, args.nodes_per_rack)
    if args.nodes < 1 or any(s is not None and s < 1 for s in sizes):
        raise UsageError("--nodes, --halls, --racks-per-hall and --nodes-per-rack must be > 0")
    try:
        fleet = layout(args.nodes, args.cluster, *sizes)
    except ValueError as err:
        raise UsageError(str(err)) from None
    last = args.base_port + args.nodes - 1
    if args.base_port < 1 or last > 65535:
        raise UsageError(f"ports {args.base_port}-{last} do not fit in 1-65535")
    return Settings(
        args.nodes,
        args.listen_address.strip("[]"),
        args.base_port,
        interval,
        args.seed,
        fleet,
        deck,
        args.file_sd,
        _workers(args.workers, args.nodes),
    )


def _checked(flag: str, parse: Callable[[str], T], text: str) -> T:
    try:
        return parse(text)
    except ValueError as err:
        raise UsageError(f"{flag}: {err}") from None


def _workers(text: str, nodes: int) -> int:
    if text == "auto":
        return max(1, min(os.cpu_count() or 1, math.ceil(nodes / NODES_PER_WORKER)))
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f'--workers: give a number of processes or "auto", got "{text}"')
    return min(int(text), nodes)


def raise_fd_limit(nodes: int) -> None:
    """Raise the soft RLIMIT_NOFILE to the hard one; UsageError when that is still too few."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = nodes * FDS_PER_NODE + FDS_SPARE
    if hard != resource.RLIM_INFINITY and hard < need:
        raise UsageError(
            f"{nodes} nodes need about {need} file descriptors (a listening socket and a "
            f"scraper connection each), but the hard limit is {hard}: raise it (ulimit -Hn, "
            f"LimitNOFILE=) or simulate fewer nodes"
        )
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def announce(config: Settings, plans: list[NodePlan], started: float) -> None:
    """Write the file_sd file and print the one-line summary (once every node serves)."""
    racks = write_file_sd(config.file_sd, [p.placement for p in plans], config.target_host)
    host = f"[{config.target_host}]" if ":" in config.target_host else config.target_host
    ports = f"{host}:{config.base_port}-{config.base_port + config.nodes - 1}"
    fleet = summary(plans).split("; roles:")[0]
    print(
        f"{PROG}: {fleet} on {ports}; file_sd {config.file_sd.resolve()} "
        f"({plural(racks, 'rack')} in {plural(config.fleet.halls, 'hall')} of "
        f"{config.fleet.cluster}); every {config.interval:g}s; "
        f"{plural(config.workers, 'process', 'es')}; ready in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    log.info("mix: %s", summary(plans).split("; roles: ")[1])


def _install_stop(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _quiet_nodes(level: str) -> None:
    """The simulated faults make node internals log on purpose: errors only, unless debug."""
    if level != "debug":
        for name in ("agent.hw", "agent.collectors", "agent.sampler", "agent.exposition"):
            logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.monotonic()
    stop = threading.Event()
    _install_stop(stop)
    try:
        config = settings(args)
        raise_fd_limit(config.nodes)
    except UsageError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_USAGE
    logs.setup(args.log_level, "text")
    _quiet_nodes(args.log_level)
    plans = plan_fleet(config.nodes, config.seed, config.fleet, config.base_port, config.deck)
    if args.dump_scenarios is not None:
        dump_scenarios(plans, args.dump_scenarios)
    try:
        sockets = bind_ports(config.host, [p.placement.port for p in plans])
    except BindError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_USAGE
    if config.workers > 1:
        workers = Workers(plans, sockets, config.interval, config.workers)
        if not workers.start(stop):
            return EXIT_OK if stop.is_set() else EXIT_WORKER
        announce(config, plans, started)
        return workers.wait(stop)
    return run_nodes(
        plans, sockets, config.interval, stop, lambda _: announce(config, plans, started)
    )
