"""What NVIDIA's XID catalogue advises for an XID, as a short label-friendly action.

The data (`xid_catalogue.csv`, package data) holds the catalogue's `immediate_action` as written;
`ACTION_OF` maps its values to the agent's vocabulary:

| catalogue immediate_action                                 | action          |
|------------------------------------------------------------|-----------------|
| IGNORE                                                     | none            |
| XID_154 (informational: the line names a recovery action   | none            |
|   that NVML reports too, as suanli_gpu_recovery_action)    |                 |
| RESTART_APP                                                | restart_app     |
| WORKFLOW_XID_45, WORKFLOW_XID_48, WORKFLOW_NVLINK_ERR,     | investigate     |
|   WORKFLOW_NVLINK5_ERR, CHECK_UVM, UPDATE_SWFW             |                 |
| RESET_GPU                                                  | reset_gpu       |
| RESTART_BM, RESTART_VM                                     | reboot_node     |
| CHECK_MECHANICALS                                          | check_hardware  |
| CONTACT_SUPPORT                                            | contact_support |
| empty (XIDs 162-172 have none yet), or XID not listed      | unknown         |

`investigate` means the catalogue gives a decision procedure, not one action: the outcome
depends on other evidence (the XID that caused a 45, row-remap state after a 48, the NVLink
error decode of 144-150). `ACTIONS` orders the vocabulary by how much it asks of an operator;
from `unknown` on, someone has to look (`needs_operator`).
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

ACTIONS = (
    "none",
    "restart_app",
    "unknown",
    "investigate",
    "reset_gpu",
    "reboot_node",
    "check_hardware",
    "contact_support",
)
ACTION_OF = {
    "IGNORE": "none",
    "XID_154": "none",
    "RESTART_APP": "restart_app",
    "WORKFLOW_XID_45": "investigate",
    "WORKFLOW_XID_48": "investigate",
    "WORKFLOW_NVLINK_ERR": "investigate",
    "WORKFLOW_NVLINK5_ERR": "investigate",
    "CHECK_UVM": "investigate",
    "UPDATE_SWFW": "investigate",
    "RESET_GPU": "reset_gpu",
    "RESTART_BM": "reboot_node",
    "RESTART_VM": "reboot_node",
    "CHECK_MECHANICALS": "check_hardware",
    "CONTACT_SUPPORT": "contact_support",
}
CATALOGUE_FILE = "xid_catalogue.csv"


@dataclass(frozen=True)
class XidAdvice:
    """The catalogue's word on one XID. `severity` is "fatal" or "nonfatal" (NVSentinel's
    classification) or None; `immediate_action` is the catalogue's own term ("" if none)."""

    xid: int
    mnemonic: str
    action: str
    severity: str | None
    immediate_action: str = ""


def advice(xid: int) -> XidAdvice:
    """The advice for `xid`; action `unknown` for an XID the catalogue does not list."""
    return _catalogue().get(xid) or XidAdvice(xid, "", "unknown", None)


def needs_operator(action: str) -> bool:
    """True when an action asks for more than restarting the application."""
    return ACTIONS.index(action) >= ACTIONS.index("unknown")


@functools.cache
def _catalogue() -> dict[int, XidAdvice]:
    text = resources.files("agent.hw").joinpath(CATALOGUE_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {int(row["xid"]): _advice(row) for row in rows}


def _advice(row: dict[str, str]) -> XidAdvice:
    immediate = row["immediate_action"].strip()
    severity = row["severity"].strip().lower() or None
    action = ACTION_OF.get(immediate, "unknown")
    return XidAdvice(int(row["xid"]), row["mnemonic"], action, severity, immediate)
