"""Worker processes, one slice of the fleet each, for fleets too big for one Python thread.

The GIL lets one process use about one CPU: `--workers N` forks N processes after every port
is bound, each taking a contiguous slice of the nodes and their listening sockets, and running
`run_nodes` on them. The parent waits until every worker says it is ready (through a pipe),
then watches them: SIGTERM or SIGINT is passed on to them (exit 0 once they stop), and a
worker that dies stops the others (exit 1).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence

from suanli_sim.fleet.runtime import Ready, run_nodes
from suanli_sim.fleet.scenarios import NodePlan

log = logging.getLogger("suanli_sim.fleet")
STOP_TIMEOUT_S = 15.0


class Workers:
    def __init__(
        self,
        plans: Sequence[NodePlan],
        sockets: Sequence[socket.socket],
        interval: float,
        count: int,
    ) -> None:
        self.plans = list(plans)
        self.sockets = list(sockets)
        self.interval = interval
        self.count = count
        self.pids: list[int] = []
        self._pipes: list[int] = []

    def _slice(self, worker: int) -> range:
        n = len(self.plans)
        return range(worker * n // self.count, (worker + 1) * n // self.count)

    def start(self, stop: threading.Event) -> bool:
        """Fork the workers; True once all serve, False when one failed or we were stopped."""
        for worker in range(self.count):
            read_end, write_end = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                self._child(worker, write_end, stop)  # never returns
            os.close(write_end)
            self.pids.append(pid)
            self._pipes.append(read_end)
        for sock in self.sockets:
            sock.close()  # the workers hold them now
        return self._await_ready(stop)

    def _child(self, worker: int, pipe: int, stop: threading.Event) -> None:
        code = 1
        try:
            for other in self._pipes:
                os.close(other)
            mine = self._slice(worker)
            for i, sock in enumerate(self.sockets):
                if i not in mine:
                    sock.close()
            plans = [self.plans[i] for i in mine]
            sockets = [self.sockets[i] for i in mine]
            label = f"worker {worker + 1}/{self.count}: "

            def ready(info: Ready) -> None:
                os.write(pipe, f"{info.nodes} {info.seconds:.1f}\n".encode())

            code = run_nodes(plans, sockets, self.interval, stop, ready, label, os.getppid())
        except BaseException:
            log.exception("worker %d failed", worker + 1)
        finally:
            os._exit(code)

    def _await_ready(self, stop: threading.Event) -> bool:
        waiting = set(self._pipes)
        while waiting and not stop.is_set():
            readable, _, _ = select.select(list(waiting), [], [], 0.5)
            for fd in readable:
                if not os.read(fd, 256):  # end of file: the worker exited before serving
                    log.error("a worker process exited before it was ready")
                    self.terminate()
                    return False
                waiting.discard(fd)
        if stop.is_set():
            self.terminate()
            return False
        return True

    def wait(self, stop: threading.Event) -> int:
        """Until stopped (then 0 when every worker stopped cleanly) or a worker dies (1)."""
        while not stop.wait(0.5):
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid != 0:
                self.pids.remove(pid)
                log.error("worker process %d exited (status %d); stopping", pid, status)
                self.terminate()
                return 1
        return 0 if self.terminate() else 1

    def terminate(self) -> bool:
        """SIGTERM every worker, wait for them (SIGKILL after STOP_TIMEOUT_S); True when all
        exited with status 0."""
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        clean, deadline = True, time.monotonic() + STOP_TIMEOUT_S
        for pid in self.pids:
            clean = _reap(pid, deadline) and clean
        self.pids = []
        for fd in self._pipes:
            os.close(fd)
        self._pipes = []
        return clean


def _reap(pid: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return False
