"""Calls that break nvml.h's contract, recorded where they happen so a test fails with the reason.

On a real driver such a call corrupts memory or kills the process (a structure passed by value
where nvml.h wants a pointer segfaulted a real H200's Python process). The fake C library
refuses it instead (the call answers NVML_ERROR_INVALID_ARGUMENT) and records an
`AbiViolation`; the test suite's conftest fails every test during which one was recorded.
A process started with `SUANLI_ABI_VIOLATIONS=FILE` (the suite's agent subprocesses, and
probe children forked from the test runner) also appends each violation to FILE, one line
each, so the test that started it sees it too.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

__all__ = ["ENV", "AbiViolation", "record", "recorded", "take"]

log = logging.getLogger(__name__)
ENV = "SUANLI_ABI_VIOLATIONS"
OWNER = "SUANLI_ABI_VIOLATIONS_OWNER"  # the process that reads FILE records in memory only
_lock = threading.Lock()
_recorded: list[AbiViolation] = []


@dataclass(frozen=True)
class AbiViolation:
    """One call that a real libnvidia-ml.so would not survive (or would answer with garbage)."""

    function: str
    problem: str

    def __str__(self) -> str:
        return f"{self.function}: {self.problem}"


def record(function: str, problem: str) -> AbiViolation:
    violation = AbiViolation(function, problem)
    with _lock:
        _recorded.append(violation)
    log.error("C ABI violation: %s", violation)
    shared = os.environ.get(ENV)
    if shared and os.environ.get(OWNER) != str(os.getpid()):  # the test runner takes its own
        with open(shared, "a", encoding="utf-8") as out:
            out.write(f"{violation}\n")
    return violation


def recorded() -> list[AbiViolation]:
    with _lock:
        return list(_recorded)


def take() -> list[AbiViolation]:
    """The violations recorded so far, forgetting them."""
    with _lock:
        found = list(_recorded)
        _recorded.clear()
    return found
