"""The only module that imports pynvml: initialisation, error accounting and NOT_SUPPORTED memory.

`NvmlGateway` wraps a pynvml-shaped module (the real `pynvml`, or a simulator's stand-in) and
gives the rest of the agent three guarantees:

* NVML is initialised lazily and re-initialised with exponential backoff when it is missing or
  goes away, so a driver that appears after start is picked up without a restart;
* a call that NVML answers NOT_SUPPORTED returns None and is never made again (until re-init);
* every other NVMLError is counted per function and error name, for `suanli_nvml_errors_total`.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

import pynvml

from agent.hw import nvml_enums
from agent.hw.nvml_errors import GpuGone, NvmlUnavailable, error_name

__all__ = [
    "CLOCKS",
    "CLOCK_EVENT_REASONS",
    "GPM_METRICS",
    "NVML",
    "THRESHOLDS",
    "VIOLATION_POLICIES",
    "XID_EVENT",
    "LibraryMismatch",
    "NVMLError",
    "NvmlGateway",
    "binding_version",
]

log = logging.getLogger(__name__)

NVMLError = pynvml.NVMLError
LibraryMismatch = pynvml.NVMLLibraryMismatchError  # a versioned call the driver lacks


class NvmlConstants:
    """NVML's integer constants (field ids, return codes, enumerations) by their nvml.h names.

    The rest of the agent reaches NVML only through `NvmlGateway`; this hands out numbers, never
    the module or its functions.
    """

    def __getattr__(self, name: str) -> int:
        value = getattr(pynvml, name, None)
        if not name.startswith(("NVML_", "nvml")) or not isinstance(value, int):
            raise AttributeError(f"pynvml has no integer constant {name}")
        return value


NVML = NvmlConstants()


def _numbers(names: dict[str, str]) -> dict[str, int]:
    """A table of `nvml_enums` with each nvml.h name replaced by the binding's number."""
    return {label: getattr(pynvml, name) for label, name in names.items()}


# NVML's enumerations, named as the metric contract's label values.
CLOCKS = _numbers(nvml_enums.CLOCKS)
THRESHOLDS = _numbers(nvml_enums.THRESHOLDS)
CLOCK_EVENT_REASONS = _numbers(nvml_enums.CLOCK_EVENT_REASONS)
VIOLATION_POLICIES = _numbers(nvml_enums.VIOLATION_POLICIES)
GPM_METRICS = _numbers(nvml_enums.GPM_METRICS)
XID_EVENT = pynvml.nvmlEventTypeXidCriticalError

_LIBRARY_GONE = {
    pynvml.NVML_ERROR_UNINITIALIZED,
    pynvml.NVML_ERROR_LIBRARY_NOT_FOUND,
    pynvml.NVML_ERROR_DRIVER_NOT_LOADED,
    pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH,
}
_DEVICE_GONE = {pynvml.NVML_ERROR_GPU_IS_LOST}


@functools.cache
def binding_version() -> str:
    """The installed nvidia-ml-py version, for `suanli_agent_build_info`."""
    try:
        from importlib.metadata import version

        return version("nvidia-ml-py")
    except Exception:
        return "unknown"


class NvmlGateway:
    """A guarded door to a pynvml-shaped module. Thread-compatible: used by one sampler thread."""

    def __init__(
        self,
        nvml: Any = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.nv = pynvml if nvml is None else nvml
        self._clock = clock
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._backoff = backoff_initial
        self._next_attempt = 0.0
        self._initialised = False
        self._lock = threading.Lock()
        self.init_error: str | None = None
        self.generation = 0
        self.errors: Counter[tuple[str, str]] = Counter()
        self._unsupported: set[tuple[str, Hashable]] = set()
        self._logged: set[tuple[str, str]] = set()
        self._missing: set[tuple[str, str]] = set()
        # Says whether a function may be called here (nvml_probe.NvmlProbe); None: all may.
        self.probe: Any = None

    @property
    def up(self) -> bool:
        return self._initialised

    def ensure_init(self) -> bool:
        """Initialise NVML if it is not, respecting the backoff. True when NVML is usable."""
        if self._initialised:
            return True
        now = self._clock()
        if now < self._next_attempt:
            return False
        try:
            self.nv.nvmlInit()
        except NVMLError as err:
            self._init_failed(f"nvmlInit: {err} ({error_name(err)})", now)
            return False
        except OSError as err:  # a broken libnvidia-ml.so raises this from ctypes
            self._init_failed(f"nvmlInit: {err}", now)
            return False
        self._initialised = True
        self.init_error = None
        self._backoff = self._backoff_initial
        self.generation += 1
        self._unsupported.clear()
        if self.probe is not None:
            self.probe.forget()
        log.info("NVML initialised")
        return True

    def _init_failed(self, message: str, now: float) -> None:
        if message != self.init_error:
            log.warning("NVML unavailable, GPU metrics off until it appears: %s", message)
        self.init_error = message
        self._next_attempt = now + self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)

    def mark_lost(self, reason: str) -> None:
        """NVML went away mid-run: forget handles and retry initialisation with backoff."""
        if self._initialised:
            log.warning("NVML lost (%s); re-initialising with backoff", reason)
        self._initialised = False
        self.init_error = reason
        self._next_attempt = self._clock() + self._backoff

    def shutdown(self) -> None:
        if not self._initialised:
            return
        self._initialised = False
        try:
            self.nv.nvmlShutdown()
        except NVMLError as err:
            log.debug("nvmlShutdown: %s", err)

    def call(self, function: str, key: Hashable, *args: Any, **kwargs: Any) -> Any:
        """Call `function(*args)`; None when unsupported for `key` (a device or field identity).

        Raises `GpuGone` for GPU_IS_LOST, `NvmlUnavailable` when the library is gone, and
        `NVMLError` for anything else, after counting it.
        """
        if (function, key) in self._unsupported:
            return None
        if self.probe is not None and not self.probe.allowed(function):
            self.remember_unsupported(function, key)  # its probe did not survive it
            return None
        bound = getattr(self.nv, function, None)
        if bound is None:  # an older nvidia-ml-py without this function: as if unsupported
            self.log_once("binding", f"the NVML binding lacks {function}; not asked again")
            self.remember_unsupported(function, key)
            return None
        try:
            return bound(*args, **kwargs)
        except NVMLError as err:
            return self._handle_error(function, key, err)

    def _handle_error(self, function: str, key: Hashable, err: Any) -> None:
        code = getattr(err, "value", None)
        if code == pynvml.NVML_ERROR_NOT_SUPPORTED:
            self.remember_unsupported(function, key)
            return None
        self.count_error(function, error_name(err))
        if code in _DEVICE_GONE:
            raise GpuGone(str(err)) from err
        if code in _LIBRARY_GONE:
            self.mark_lost(f"{function}: {err}")
            raise NvmlUnavailable(str(err)) from err
        self.log_once(function, f"{function} failed: {err} ({error_name(err)})")
        raise err

    def count_error(self, function: str, error: str) -> None:
        """Count a failed call; safe from the event listener's thread too."""
        with self._lock:
            self.errors[(function, error)] += 1

    def error_counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.errors)

    def remember_unsupported(self, function: str, key: Hashable) -> None:
        self._unsupported.add((function, key))
        log.debug("%s not supported for %s; not asking again", function, key)

    def is_unsupported(self, function: str, key: Hashable) -> bool:
        return (function, key) in self._unsupported

    @staticmethod
    def handle_key(handle: Any) -> Hashable:
        """A device handle's identity: the address it points to (a pynvml handle is a ctypes
        pointer, and an event's `device` field is a new pointer object to the same address);
        the object itself for a handle that is not a ctypes pointer."""
        try:
            return ctypes.cast(handle, ctypes.c_void_p).value
        except (ctypes.ArgumentError, TypeError):
            return ("object", id(handle))

    def allowed(self, function: str) -> bool:
        """Whether the probe lets the sampler call `function` (for calls made on `nv` directly)."""
        return self.probe is None or bool(self.probe.allowed(function))

    def has(self, function: str) -> bool:
        """Whether the binding (and, for the fake, the scenario's driver) offers `function`."""
        return hasattr(self.nv, function)

    def log_once(self, topic: str, message: str) -> None:
        """Log a warning the first time a distinct message is seen for a topic."""
        if (topic, message) not in self._logged:
            self._logged.add((topic, message))
            log.warning("%s", message)

    def call_versioned(
        self, variants: list[tuple[str, dict[str, Any]]], key: Hashable, *args: Any
    ) -> Any:
        """Call the newest variant the driver has, e.g. memory info v2 before v1.

        A variant that raises FUNCTION_NOT_FOUND (an older driver) is remembered as missing
        for every device and never tried again; the next one is used instead.
        """
        for function, kwargs in variants:
            marker = (function, repr(sorted(kwargs.items())))
            if marker in self._missing:
                continue
            if self.probe is not None and not self.probe.allowed(function):
                self._missing.add(marker)
                continue
            try:
                return getattr(self.nv, function)(*args, **kwargs)
            except NVMLError as err:
                if getattr(err, "value", None) == pynvml.NVML_ERROR_FUNCTION_NOT_FOUND:
                    self._missing.add(marker)
                    log.info("%s%s missing in this driver; using an older call", function, kwargs)
                    continue
                return self._handle_error(function, key, err)
            except AttributeError:
                self._missing.add(marker)
        return None
