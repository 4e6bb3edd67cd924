"""The kernel log of a simulated node: the driver's XID lines for the scenario's `xid` faults.

The driver reports every XID both as an NVML event and as a kernel-log line, so the simulated
node writes, as simulated time reaches each fault, one `/dev/kmsg` record per XID into a file
the agent follows (`collectors.kmsg.path` in `--fake` mode): in the driver's format
(`NVRM: Xid (PCI:%04x:%02x:%02x): %d, pid='<unknown>', name=<unknown>, <message>`,
../shared/reference/kmsg/xid-line-format.txt), preceded the first time by the driver's
`NVRM: GPU at PCI:...: GPU-<uuid>` line and, for XID 79, followed by `GPU has fallen off the
bus.` (the lines around XID 79 in xid-lines__gpud.txt [D]). Priority 4 (kern.warning),
sequence numbers from 1, timestamps in microseconds of simulated time.

The scenario's `sxid` faults become the NVSwitch driver's SXid lines, as in
../shared/reference/kmsg/sxid-lines__*.txt: for `{kind: sxid, at, switch: N, link: L, code: C,
fatal: F}`,
    nvidia-nvswitch<N>: SXid (PCI:0000:<bus>:00.0): <C>, <Fatal|Non-fatal>, Link <L> <text>
with <bus> the switch's PCI bus in fake_sysfs.NVSWITCH_BUSES, followed, for a fatal one, by the
`Severity 1 Engine instance ...` and `Data {...}` lines the driver adds (which are not events:
the agent counts the first line only). `count` repeats the event. Priority 3 (kern.err).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from agent.hw.kmsg import KmsgFollower, KmsgRecord
from suanli_sim.fake_events import timeline
from suanli_sim.fake_faults import Fault
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_sysfs import NVSWITCH_BUSES, gpu_addresses

MESSAGES = {
    79: "GPU has fallen off the bus.",
    48: "An uncorrectable double bit error (DBE) has been detected on GPU.",
    13: "Graphics SM Warp Exception on (GPC 0, TPC 0, SM 0): Illegal Instruction Parameter",
}
SXID_MESSAGES = {  # the texts of sxid-lines__gpud.txt and sxid-lines__nvsentinel.txt
    20034: "LTSSM Fault Up",
    20009: "RX Short Error Rate",
    12028: "egress non-posted PRIV error",
    24007: "sourcetrack timeout error (First)",
    28006: "MC TS crumbstore MCTO (First)",
}


class FakeKmsg:
    """Appends the scenario's XID records to `path` up to the simulated time `clock()`."""

    def __init__(self, nvml: FakeNvml, path: str) -> None:
        self.path = Path(path)
        self.path.touch()
        self._clock: Callable[[], float] = nvml.now
        self._uuids = [gpu.uuid for gpu in nvml.gpus]
        self._addresses = gpu_addresses(nvml.scenario)
        bursts = timeline(nvml.scenario)
        xids = [
            (burst.at, gpu, burst.code, burst.count)
            for gpu, gpu_bursts in bursts.items()
            for burst in gpu_bursts
        ]
        self._pending = sorted(xids)
        self._sxids: list[Fault] = sorted(nvml.scenario.faults_of("sxid"), key=lambda f: f.at)
        self._named: set[int] = set()
        self._seq = 0
        self._lock = threading.Lock()

    def sync(self) -> None:
        now = self._clock()
        with self._lock:
            lines = []
            while self._pending and self._pending[0][0] <= now:
                at, gpu, code, count = self._pending.pop(0)
                lines += self._records(at, gpu, code, count)
            while self._sxids and self._sxids[0].at <= now:
                lines += self._sxid_records(self._sxids.pop(0))
            if lines:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write("".join(lines))

    def _records(self, at: float, gpu: int, code: int, count: int) -> list[str]:
        address = self._addresses[gpu]  # "0000:3a:00.0"; the driver prints no function
        pci = f"PCI:{address.rsplit('.', 1)[0]}"
        texts = []
        if gpu not in self._named:
            self._named.add(gpu)
            texts.append(f"NVRM: GPU at {pci}: {self._uuids[gpu]}")
        message = MESSAGES.get(code, "simulated fault")
        texts += [f"NVRM: Xid ({pci}): {code}, pid='<unknown>', name=<unknown>, {message}"] * count
        if code == 79:
            texts.append(f"NVRM: GPU {address}: GPU has fallen off the bus.")
        usec = int(at * 1e6)
        out = []
        for text in texts:
            self._seq += 1
            out.append(f"4,{self._seq},{usec},-;{text}\n")
        return out

    def _sxid_records(self, fault: Fault) -> list[str]:
        switch = fault.switch
        prefix = f"nvidia-nvswitch{switch}: SXid (PCI:0000:{NVSWITCH_BUSES[switch]:02x}:00.0): "
        severity = "Fatal" if fault.fatal else "Non-fatal"
        text = SXID_MESSAGES.get(fault.code, "simulated fault")
        event = [f"{prefix}{fault.code}, {severity}, Link {fault.link} {text}"]
        if fault.fatal:
            event += [
                f"{prefix}{fault.code}, Severity 1 Engine instance {fault.link:02d} "
                "Sub-engine instance 00",
                f"{prefix}{fault.code}, Data {{0x10000000, 0x10000000, 0x00000000}}",
            ]
        usec = int(fault.at * 1e6)
        out = []
        for text in event * fault.count:
            self._seq += 1
            out.append(f"3,{self._seq},{usec},-;{text}\n")
        return out


class FakeKmsgFollower(KmsgFollower):
    """Follows the simulated node's kernel-log file, bringing it up to simulated time first."""

    def __init__(self, writer: FakeKmsg) -> None:
        super().__init__(str(writer.path))
        self.writer = writer

    def poll(self, max_records: int = 10000) -> list[KmsgRecord]:
        self.writer.sync()
        return super().poll(max_records)
