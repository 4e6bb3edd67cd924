"""A simulated host for the agent: the fake NVML's node seen through `agent.app.Parts`.

Its runtime state (container runtimes, /proc of the scenario's jobs), its PCI bus (`sys/`), its
InfiniBand ports and its kernel log are written under one folder, which the agent reads as it
reads a real node's. Used by `suanli-agent --fake` (one node, threads of its own) and by every
node of the fleet simulator (`inline`: read in the fleet's sampling threads).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.collectors.kernel_log import KernelLog
from agent.hw import GpuSnapshot
from agent.hw.host import HostReader
from agent.hw.infiniband import InfinibandReader
from agent.hw.rapl import RaplReader
from agent.hw.xid_ledger import XidLedger
from agent.metrics import Sample
from agent.parts import Parts
from suanli_sim.cabi.header import HeaderMissing
from suanli_sim.cabi.nvml import CAbiNvml
from suanli_sim.cabi.probe import fork_runner, inline_runner
from suanli_sim.fake_infiniband import FakeInfinibandReader
from suanli_sim.fake_kmsg import FakeKmsg, FakeKmsgFollower
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_procfs import FakeProcfs, write_runtime_state
from suanli_sim.fake_sysfs import write_pci_devices

log = logging.getLogger(__name__)


class InlineKernelLog(KernelLog):
    """The node's simulated kernel log, read in the sampling thread: never `start()`ed, it
    drains what the log holds each time the GPU collector asks for its samples."""

    def samples(self, snapshot: GpuSnapshot | None = None) -> list[Sample]:
        self.watcher.drain_once()
        return super().samples(snapshot)


def _binding(fake: FakeNvml) -> Any:
    """NVIDIA's pynvml over the fake C library; the Python stand-in when nvml.h is missing
    (installed without the `test` extra), said in the log."""
    try:
        return CAbiNvml(fake)
    except HeaderMissing as err:
        log.warning("%s; the simulated node answers through the Python stand-in", err)
        return fake


def simulated_parts(
    fake: FakeNvml,
    root: Path,
    *,
    inline: bool = False,
    host_reader: HostReader | None = None,
    rapl: tuple[RaplReader, str] | None = None,
    c_abi: bool = True,
    kubelet: bool | None = None,
) -> Parts:
    """The parts of the node `fake` simulates, its files written under `root`. `rapl`: a
    simulated RAPL reader and the sysfs path to look for a power meter in. `c_abi`: the agent
    reads NVML through NVIDIA's pynvml and the fake C library (`suanli_sim.cabi`); False hands
    it the fake's Python stand-in for pynvml (the fleet simulator: thousands of GPUs).
    A scenario with `kubelet: true` serves its pods' GPUs on a simulated kubelet
    (`suanli_sim.fake_kubelet`, its own threads) if `kubelet` (default: unless `inline`, so a
    fleet node built alone starts no thread), stopped with the agent (`Parts.stop`)."""
    scenario = fake.scenario
    root.mkdir(parents=True, exist_ok=True)
    stop = _kubelet(fake, root, not inline if kubelet is None else kubelet)
    write_runtime_state(scenario, root)
    sysfs = root / "sys"
    write_pci_devices(scenario, str(sysfs))
    procfs = root / "proc"
    nvml = _binding(fake) if c_abi else fake
    return Parts(
        nvml=nvml,
        nvml_probe=fork_runner(nvml) if c_abi else inline_runner(fake),
        host_reader=host_reader,
        rapl=rapl[0] if rapl else None,
        power_sysfs=rapl[1] if rapl else None,
        sysfs=str(sysfs),
        infiniband=_infiniband(fake, sysfs),
        kernel_log=_kernel_log(fake, root, inline),
        jobs_procfs=str(procfs),
        jobs_host_root=str(root),
        before_jobs_read=FakeProcfs(scenario, procfs, clock=fake.now).sync,
        inline=inline,
        stop=stop,
    )


def _kubelet(fake: FakeNvml, root: Path, wanted: bool) -> Callable[[], None] | None:
    """The stop of the simulated kubelet serving under `root`, if wanted and the scenario has
    one; None when none serves."""
    if not (wanted and fake.scenario.kubelet):
        return None
    from suanli_sim.fake_kubelet import serve_kubelet  # grpc, only for a node with a kubelet

    served = serve_kubelet(fake, root)
    return served.stop if served is not None else None


def _infiniband(
    fake: FakeNvml, sysfs: Path
) -> Callable[[tuple[str, ...] | None], InfinibandReader]:
    """The reader of the node's simulated InfiniBand ports, under `sysfs`."""

    def infiniband(counters: tuple[str, ...] | None) -> InfinibandReader:
        scenario = fake.scenario
        return FakeInfinibandReader(
            str(sysfs), scenario.infiniband, scenario.seed, fake.now, counters
        )

    return infiniband


def _kernel_log(fake: FakeNvml, root: Path, inline: bool) -> Callable[[XidLedger], KernelLog]:
    """The node's simulated kernel log (`root/kmsg`), read in the sampling thread if `inline`."""
    log_class = InlineKernelLog if inline else KernelLog

    def kernel_log(ledger: XidLedger) -> KernelLog:
        writer = FakeKmsg(fake, str(root / "kmsg"))
        return log_class(str(writer.path), "", ledger, follower=lambda: FakeKmsgFollower(writer))

    return kernel_log
