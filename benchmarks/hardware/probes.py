"""Step 3 (a-d): the fault and fabric paths on real hardware.

(a) NVSwitch fabric info: first in short-lived children (a wrongly made call once crashed a
process), the agent's call and the `...InfoV` variant with its versioned structure; then, if
the child survived, in this process, raw and through the agent's `read_fabric`.
(b) XID events: the raw calls, then the agent's `XidListener`; and whether two handles of the
same GPU have the same identity (events are matched to GPUs by it).
(c) The PCI scan against NVML's bus ids. (d) The kernel log: counts, NVRM and Xid lines only.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import sys
import time
from typing import Any

from benchmarks.hardware.common import Context, guarded, open_nvml, part, run_command, write_json

CHILD_TIMEOUT_S = 20.0
EVENT_WAIT_MS = 100
KMSG = "/dev/kmsg"
KMSG_POLLS = 50
KEPT_LINES = 40


def run(ctx: Context) -> None:
    found: dict[str, Any] = {}
    children = {v: guarded(f"fabric-{v}", functools.partial(_child, v)) for v in ("agent", "v2")}
    found["fabric_children"] = children
    nv, why = open_nvml()
    found["nvml"] = why or "up"
    if nv is not None:
        try:
            survived = children["agent"].get("rc") == 0
            found["fabric_in_process"] = (
                guarded("fabric", lambda: _fabric_in_process(nv))
                if survived
                else "skipped: the child did not survive the call"
            )
            found["events"] = guarded("events", lambda: _events(nv))
            found["xid_listener"] = guarded("listener", lambda: _listener(nv))
            found["pci"] = guarded("pci", lambda: _pci(nv))
        finally:
            nv.nvmlShutdown()
    found["kmsg"] = guarded("kmsg", _kmsg)
    write_json(part(ctx, "probes"), found)


def _child(variant: str) -> dict[str, Any]:
    args = [sys.executable, "-m", "benchmarks.hardware.validate", "child", f"fabric-{variant}"]
    done = run_command(args, CHILD_TIMEOUT_S, env={**os.environ, "PYTHONPATH": _root()})
    rc = done.get("rc")
    done["crashed"] = rc is not None and rc < 0  # killed by a signal (SIGSEGV: -11)
    try:
        done["answer"] = json.loads(done.pop("stdout") or "null")
    except ValueError:
        done["answer"] = None
    return done


def _root() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    path = os.environ.get("PYTHONPATH")
    return root if not path else f"{root}:{path}"


def child_fabric(variant: str) -> int:
    """In a child: every GPU's fabric info, printed as JSON (a crash shows as the exit signal)."""
    nv, why = open_nvml()
    if nv is None:
        print(json.dumps({"error": why}))
        return 0
    try:
        count = nv.nvmlDeviceGetCount()
        answers = [_fabric_raw(nv, nv.nvmlDeviceGetHandleByIndex(i), variant) for i in range(count)]
        print(json.dumps(answers))
    finally:
        nv.nvmlShutdown()
    return 0


def _fabric_raw(nv: Any, handle: Any, variant: str) -> dict[str, Any]:
    """nvmlDeviceGetGpuFabricInfo(V) with the structure passed by pointer (ctypes.byref)."""
    try:
        if variant == "v2":  # versioned structure; its constructor sets the version
            info, call = nv.c_nvmlGpuFabricInfoV_t(), nv.nvmlDeviceGetGpuFabricInfoV
        else:
            info, call = nv.c_nvmlGpuFabricInfo_t(), nv.nvmlDeviceGetGpuFabricInfo
        call(handle, ctypes.byref(info))
    except Exception as err:  # NVMLError, or a binding without the call
        return {"error": repr(err), "code": getattr(err, "value", None)}
    found = {"state": int(info.state), "status": int(info.status), "clique": int(info.cliqueId)}
    if hasattr(info, "healthMask"):
        found["health_mask"] = int(info.healthMask)
    return found


def _device(gw: Any, index: int) -> tuple[Any, Any]:
    from agent.hw.nvml_static import read_device

    handle = gw.call("nvmlDeviceGetHandleByIndex", ("gpu", index), index)
    return handle, read_device(gw, index, handle)


def _fabric_in_process(nv: Any) -> dict[str, Any]:
    from agent.hw import GpuReading
    from agent.hw.nvml import NvmlGateway
    from agent.hw.nvml_fabric import read_fabric

    gw = NvmlGateway(nv)
    gw.ensure_init()
    handle, device = _device(gw, 0)
    reading = GpuReading(device=device)
    read_fabric(gw, reading, handle)
    agent = {"state": reading.fabric_state, "status": reading.fabric_status}
    agent["clique"] = reading.fabric_clique
    return {"raw": _fabric_raw(nv, handle, "agent"), "agent_read_fabric": agent}


def _events(nv: Any) -> dict[str, Any]:
    from agent.hw.nvml import NvmlGateway

    first, second = nv.nvmlDeviceGetHandleByIndex(0), nv.nvmlDeviceGetHandleByIndex(0)
    keys = [NvmlGateway.handle_key(first), NvmlGateway.handle_key(second)]
    found: dict[str, Any] = {
        "handle_keys": [str(k) for k in keys],
        "same_handle": keys[0] == keys[1],
    }
    supported = int(nv.nvmlDeviceGetSupportedEventTypes(first))
    found["supported_mask"] = hex(supported)
    found["xid_supported"] = bool(supported & nv.nvmlEventTypeXidCriticalError)
    found.update(guarded("register", lambda: _register_and_wait(nv, first, keys[0])))
    return found


def _register_and_wait(nv: Any, handle: Any, key: Any) -> dict[str, Any]:
    event_set = nv.nvmlEventSetCreate()
    try:
        nv.nvmlDeviceRegisterEvents(handle, nv.nvmlEventTypeXidCriticalError, event_set)
        return {"registered": True, "wait": _wait_once(nv, event_set, key)}
    finally:
        nv.nvmlEventSetFree(event_set)


def _wait_once(nv: Any, event_set: Any, key: Any) -> dict[str, Any]:
    """One wait: a quiet GPU answers TIMEOUT after about EVENT_WAIT_MS."""
    from agent.hw.nvml import NvmlGateway

    started = time.monotonic()
    try:
        event = nv.nvmlEventSetWait_v2(event_set, EVENT_WAIT_MS)
    except nv.NVMLError as err:
        timeout = getattr(err, "value", None) == nv.NVML_ERROR_TIMEOUT
        waited = round((time.monotonic() - started) * 1000, 1)
        return {"answer": str(err), "timeout": timeout, "waited_ms": waited}
    return {
        "answer": "event",
        "event_type": int(event.eventType),
        "data": int(event.eventData),
        "same_device": NvmlGateway.handle_key(event.device) == key,
    }


def _listener(nv: Any) -> dict[str, Any]:
    """The agent's own XID path: open a set, register GPU 0, wait a little, stop."""
    from agent.hw.nvml import NvmlGateway
    from agent.hw.nvml_events import XidListener
    from agent.hw.xid_ledger import XidLedger

    gw = NvmlGateway(nv)
    gw.ensure_init()
    listener = XidListener(gw, XidLedger(), wait_ms=EVENT_WAIT_MS, threaded=True)
    listener.open()
    handle, device = _device(gw, 0)
    registered = listener.register(handle, device)
    time.sleep(3 * EVENT_WAIT_MS / 1000)
    listener.stop()
    errors = {f"{f}:{e}": n for (f, e), n in gw.error_counts().items()}
    return {"registered": registered, "indexes": sorted(listener.registered), "errors": errors}


def _pci(nv: Any) -> dict[str, Any]:
    from agent.hw.pci import nvidia_gpus, pci_address, sysfs_name

    scanned = [sysfs_name(a) for a in nvidia_gpus("/sys")]
    nvml = []
    for index in range(nv.nvmlDeviceGetCount()):
        bus_id = nv.nvmlDeviceGetPciInfo(nv.nvmlDeviceGetHandleByIndex(index)).busId
        bus_id = bus_id.decode() if isinstance(bus_id, bytes) else str(bus_id)
        address = pci_address(bus_id)
        nvml.append({"nvml": bus_id, "as_sysfs": None if address is None else sysfs_name(address)})
    same = sorted(scanned) == sorted(n["as_sysfs"] for n in nvml if n["as_sysfs"])
    return {"sysfs_scan": scanned, "nvml": nvml, "match": same}


def _kmsg() -> dict[str, Any]:
    from agent.hw.kernel_xid import parse_xid
    from agent.hw.kmsg import KmsgError, KmsgFollower

    found: dict[str, Any] = {"readable": os.access(KMSG, os.R_OK), "records": 0}
    follower, kept, counts = KmsgFollower(KMSG), [], {"nvrm": 0, "xid": 0, "xid_parsed": 0}
    try:
        for _ in range(KMSG_POLLS):
            records = follower.poll()
            if not records:
                break
            found["records"] += len(records)
            kept += _interesting(records, counts, parse_xid)
    except KmsgError as err:
        found["error"] = str(err)
    finally:
        follower.close()
    found.update(counts, lost=follower.lost, lines=kept[-KEPT_LINES:])
    return found


def _interesting(records: list[Any], counts: dict[str, int], parse_xid: Any) -> list[str]:
    """NVRM and Xid lines only (counted; their text kept, cut to 300 characters)."""
    kept = []
    for record in records:
        text = record.text
        nvrm, xid = "NVRM" in text, "Xid" in text
        counts["nvrm"] += nvrm
        counts["xid"] += xid
        counts["xid_parsed"] += parse_xid(text) is not None
        if nvrm or xid:
            kept.append(text[:300])
    return kept
