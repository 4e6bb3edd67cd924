"""Running a slice of the fleet in this process: build its nodes, sample them, serve them.

`run_nodes` builds every node (its first sample included, so a port serves data from the
start), starts the scheduler thread and serves every port from one asyncio loop until SIGTERM
or SIGINT, logging a line a minute: cycle time, sampling load, CPU, resident memory, scrapes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.config import Config
from suanli_sim.fleet.http import HttpStats, MultiPortServer
from suanli_sim.fleet.node import SimNode, build_node
from suanli_sim.fleet.scenarios import NodePlan
from suanli_sim.fleet.scheduler import Scheduler, Stats

log = logging.getLogger("suanli_sim.fleet")

REPORT_EVERY_S = 60.0
# How long the sampling thread may hold the GIL while a scrape waits (Python's default: 5 ms)
SWITCH_INTERVAL_S = 0.0005


class BindError(Exception):
    """A port cannot be listened on: one line naming it."""


def bind_ports(host: str, ports: Sequence[int], backlog: int = 128) -> list[socket.socket]:
    """A listening socket on each port, or BindError (after closing those already bound)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bound: list[socket.socket] = []
    for port in ports:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError as err:
            sock.close()
            for other in bound:
                other.close()
            shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
            raise BindError(f"cannot listen on {shown}: {err.strerror or err}") from None
        bound.append(sock)
    return bound


@dataclass(frozen=True)
class Ready:
    nodes: int
    seconds: float  # building the nodes and their first samples


def rss_bytes() -> int:
    """This process's resident memory (peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def settle_garbage_collector() -> None:
    """Move the nodes (millions of long-lived objects) out of the collector's sight, and
    collect young objects less often: each cycle allocates ~10^5 short-lived samples, nearly
    all freed by reference counting. Measured at 500 nodes: GC time per cycle from ~0.6 s
    to ~0, sampling CPU per node -18%, resident memory +10%."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 20, 10)


def build_nodes(
    plans: Sequence[NodePlan],
    interval: float,
    root: Path,
    stop: threading.Event,
    nodes: list[SimNode],
) -> None:
    """Every node, sampled once, added to `nodes` as it is built (so the caller closes those
    built when one fails); stops early when `stop` is set."""
    config = Config()
    for plan in plans:
        if stop.is_set():
            break
        node = build_node(plan, interval, config, root, kubelet=True)
        nodes.append(node)
        node.sample()


def run_nodes(
    plans: Sequence[NodePlan],
    sockets: Sequence[socket.socket],
    interval: float,
    stop: threading.Event,
    on_ready: Callable[[Ready], None],
    label: str = "",
    parent: int | None = None,
) -> int:
    """Serve `plans` on `sockets` until stopped (or, for a worker, until process `parent` is
    gone); 0 on a clean stop."""
    root = Path(tempfile.mkdtemp(prefix="suanli-simulate-"))
    log.info("%sbuilding %d nodes; their fake procfs under %s", label, len(plans), root)
    began = time.monotonic()
    nodes: list[SimNode] = []
    try:
        build_nodes(plans, interval, root, stop, nodes)
        if stop.is_set():
            return 0
        settle_garbage_collector()
        ready = Ready(len(nodes), time.monotonic() - began)
        serve = _serve(nodes, sockets, interval, stop, lambda: on_ready(ready), label, parent)
        asyncio.run(serve)
        return 0
    finally:
        closing = time.monotonic()
        for node in nodes:
            node.close()
        for sock in sockets:
            sock.close()
        shutil.rmtree(root, ignore_errors=True)
        log.info("%sstopped in %.1f s", label, time.monotonic() - closing)


async def _serve(
    nodes: Sequence[SimNode],
    sockets: Sequence[socket.socket],
    interval: float,
    stop: threading.Event,
    ready: Callable[[], None],
    label: str,
    parent: int | None,
) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, done.set)
    if stop.is_set():  # a signal that came before the loop took over
        return
    server = MultiPortServer(nodes, sockets)
    await server.start()
    scheduler = Scheduler(nodes, interval)
    scheduler.start()
    ready()
    tasks = [asyncio.create_task(_report(scheduler.stats, server.stats, len(nodes), label))]
    if parent is not None:
        tasks.append(asyncio.create_task(_orphaned(parent, done)))
    await done.wait()
    log.info("%sstopping", label)
    for task in tasks:
        task.cancel()
    server.close()
    scheduler.stop()


async def _orphaned(parent: int, done: asyncio.Event) -> None:
    """A worker stops when its parent is gone (killed before it could pass a signal on)."""
    while os.getppid() == parent:
        await asyncio.sleep(2.0)
    log.error("the parent process %d is gone; stopping", parent)
    done.set()


async def _report(stats: Stats, http: HttpStats, count: int, label: str) -> None:
    cpu, wall = time.process_time(), time.monotonic()
    while True:
        await asyncio.sleep(REPORT_EVERY_S)
        now_cpu, now = time.process_time(), time.monotonic()
        log.info("%s%s", label, report_line(stats, http, count, now_cpu - cpu, now - wall))
        cpu, wall = now_cpu, now
        stats.reset_window()


def report_line(stats: Stats, http: HttpStats, count: int, cpu: float, wall: float) -> str:
    """`1000 nodes: cycle 14.99 s (busy 8.10 s), max lag 0.21 s, 0 behind; CPU 34.1 s in
    60 s (57%); RSS 640 MiB; 4000 scrapes p50 0.04 ms p99 0.31 ms, 1000 connections`."""
    latencies = sorted(http.take_latencies())
    if latencies:
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        scrapes = f"{len(latencies)} scrapes p50 {p50:.2f} ms p99 {p99:.2f} ms"
    else:
        scrapes = "0 scrapes"
    return (
        f"{count} nodes: cycle {stats.last_cycle_s:.2f} s (busy {stats.last_busy_s:.2f} s), "
        f"max lag {stats.max_lag_s:.2f} s, {stats.behind} behind; CPU {cpu:.1f} s in "
        f"{wall:.0f} s ({100 * cpu / max(wall, 1e-9):.0f}%); RSS {rss_bytes() / 2**20:.0f} MiB; "
        f"{scrapes}, {http.connections} connections"
    )
