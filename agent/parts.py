"""What the agent reads a node through. Each default is the real node, found from the
configuration; a simulator passes its stand-ins (a fake NVML, its /proc and /sys trees, its
kernel log) to `agent.app.build` here, and nowhere else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.collectors.kernel_log import KernelLog
    from agent.hw.host import HostReader
    from agent.hw.infiniband import InfinibandReader
    from agent.hw.rapl import RaplReader
    from agent.hw.xid_ledger import XidLedger


@dataclass(frozen=True)
class Parts:
    nvml: Any = None  # a pynvml-shaped module; None: NVIDIA's binding
    host_reader: HostReader | None = None
    rapl: RaplReader | None = None
    power_sysfs: str | None = None  # where a power meter is looked for
    sysfs: str | None = None  # the PCI tree that says which GPUs to expect
    infiniband: Callable[[tuple[str, ...] | None], InfinibandReader] | None = None
    kernel_log: Callable[[XidLedger], KernelLog] | None = None  # when the kmsg path is the default
    jobs_procfs: str | None = None
    jobs_host_root: str | None = None
    before_jobs_read: Callable[[], None] | None = None
    # makes risky NVML calls in a child: (its output, exit status); None: a new interpreter
    nvml_probe: Callable[[list[str]], tuple[str, int]] | None = None
    inline: bool = False  # read everything in the sampling thread (a fleet in one process)
    # stops what a simulated node runs beside the agent (its kubelet); called when the sampler stops
    stop: Callable[[], None] | None = None
