"""How a call to the fake NVML proceeds: counting, faults that pre-empt a value, and handles.

`FakeNvmlBase` holds the state shared by every fake NVML function; the decorators `system`,
`device` and `mig_device` wrap each function so that, like real NVML, it first answers
Uninitialized, FunctionNotFound, InvalidArgument (bad handle), GpuIsLost, an injected error or
NOT_SUPPORTED before any value is computed. They keep the wrapped function's signature
(`functools.wraps`). MIG device handles (`FakeMigHandle`) are accepted only by the functions in
`MIG_HANDLE_FUNCTIONS`; every other device function answers NOT_SUPPORTED for them (assumed: NVML
documents that MIG device handles work "with some restrictions", not which error the others give).
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from suanli_sim.binding import pynvml
from suanli_sim.fake_device import FakeGpu, fail
from suanli_sim.fake_faults import Fault
from suanli_sim.fake_functions import SYMBOLS
from suanli_sim.fake_latency import call_seconds
from suanli_sim.fake_mig_device import MigDevice
from suanli_sim.fake_scenario import Scenario

P = pynvml
_P = ParamSpec("_P")
_T = TypeVar("_T")
_S = TypeVar("_S", bound="FakeNvmlBase")
_PURE_HELPERS = {"nvmlExceptionClass", "nvmlStructToFriendlyObject", "nvmlFriendlyObjectToStruct"}
_INIT = ("nvmlInit", "nvmlShutdown")
HANG_POLL_S = 0.05  # how often a hung call looks whether its fault has ended (real time)
MIG_HANDLE_FUNCTIONS = frozenset(
    {
        "nvmlDeviceGetIndex",
        "nvmlDeviceGetName",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceIsMigDeviceHandle",
        "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
        "nvmlDeviceGetGpuInstanceId",
        "nvmlDeviceGetComputeInstanceId",
        "nvmlDeviceGetAttributes",
        "nvmlDeviceGetAttributes_v2",
        "nvmlDeviceGetComputeRunningProcesses",  # the MIG instance's own processes
        "nvmlDeviceGetComputeRunningProcesses_v2",
    }
)


class ProcessKilled(BaseException):
    """A `segfault` fault: the process making this call dies. The fake C library (and so any
    process reading NVML through NVIDIA's binding) aborts on it, as the H200's process did
    (shared/reference/h200); the fleet's in-process probe reports it as its child's death."""


class FakeHandle:
    """An opaque device handle, as nvmlDeviceGetHandleByIndex returns."""

    __slots__ = ("_owner", "index")

    def __init__(self, owner: FakeNvmlBase, index: int) -> None:
        self._owner = owner
        self.index = index

    def __repr__(self) -> str:
        return f"<FakeHandle gpu {self.index}>"


class FakeMigHandle(FakeHandle):
    """A MIG device handle, as nvmlDeviceGetMigDeviceHandleByIndex returns; `index` is the
    parent GPU's index, `mig_index` the MIG device's index under it."""

    __slots__ = ("mig_index",)

    def __init__(self, owner: FakeNvmlBase, index: int, mig_index: int) -> None:
        super().__init__(owner, index)
        self.mig_index = mig_index

    def __repr__(self) -> str:
        return f"<FakeHandle gpu {self.index} mig {self.mig_index}>"


def system(fn: Callable[Concatenate[_S, _P], _T]) -> Callable[Concatenate[_S, _P], _T]:
    """Wrap a function that takes no device handle."""

    def call(self: _S, *args: Any, **kwargs: Any) -> _T:
        self.enter(fn.__name__)
        with self.lock:
            result: _T = cast(Any, fn)(self, *args, **kwargs)
        return result

    functools.update_wrapper(call, fn)
    return cast(Callable[Concatenate[_S, _P], _T], call)


def device(
    fn: Callable[Concatenate[_S, FakeGpu, _P], _T],
) -> Callable[Concatenate[_S, Any, _P], _T]:
    """Wrap a function whose first parameter is a device handle; it receives the FakeGpu.
    The handle may be passed by keyword under pynvml's name for it (`handle` or `device`)."""
    name = list(inspect.signature(fn).parameters)[1]

    def call(self: _S, *args: Any, **kwargs: Any) -> _T:
        handle, rest = (args[0], args[1:]) if args else (kwargs.pop(name, None), ())
        gpu = self.enter(fn.__name__, handle, device=True)
        assert gpu is not None
        with self.lock:
            result: _T = cast(Any, fn)(self, gpu, *rest, **kwargs)
        return result

    functools.update_wrapper(call, fn)
    return cast(Callable[Concatenate[_S, Any, _P], _T], call)


def mig_device(
    fn: Callable[Concatenate[_S, FakeGpu, MigDevice | None, _P], _T],
) -> Callable[Concatenate[_S, Any, _P], _T]:
    """Like `device`, for a function that also accepts MIG device handles: it receives the GPU
    and the MIG device (None for a GPU handle)."""
    name = list(inspect.signature(fn).parameters)[1]

    def call(self: _S, *args: Any, **kwargs: Any) -> _T:
        handle, rest = (args[0], args[1:]) if args else (kwargs.pop(name, None), ())
        gpu = self.enter(fn.__name__, handle, device=True)
        assert gpu is not None
        mig = gpu.mig[handle.mig_index] if isinstance(handle, FakeMigHandle) else None
        with self.lock:
            result: _T = cast(Any, fn)(self, gpu, mig, *rest, **kwargs)
        return result

    functools.update_wrapper(call, fn)
    call.__signature__ = _without_mig(fn)  # type: ignore[attr-defined]
    return cast(Callable[Concatenate[_S, Any, _P], _T], call)


def _without_mig(fn: Callable[..., Any]) -> inspect.Signature:
    """fn's signature less its MIG device parameter: pynvml's."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    return sig.replace(parameters=[params[0], params[1], *params[3:]])


class FakeNvmlBase:
    """State shared by the fake NVML functions. `calls` counts calls per function name."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.scenario = scenario
        self.calls: Counter[str] = Counter()
        self.lock = threading.RLock()
        start = time.monotonic()
        self._clock = clock or (lambda: time.monotonic() - start)
        self._sleep = sleep
        self._refcount = 0
        self.gpus = [FakeGpu(scenario, i, spec) for i, spec in enumerate(scenario.gpus)]
        self.handles = [FakeHandle(self, i) for i in range(len(self.gpus))]
        # A GPU that failed at boot is not enumerated: the count shrinks and the NVML indexes
        # of the GPUs after it move down; every GPU keeps its UUID and bus id.
        missing = {
            i for f in scenario.faults_of("missing") for i in f.gpus or range(len(self.gpus))
        }
        self.enumerated = [i for i in range(len(self.gpus)) if i not in missing]
        self._hangs_released = threading.Event()
        self.missing = {
            name for f in scenario.faults_of("missing_functions") for name in f.functions
        }
        if int(scenario.driver_version.split(".")[0]) < 535:  # "Clocks Throttle Reasons" era
            self.missing.add("nvmlDeviceGetCurrentClocksEventReasons")

    def __getattr__(self, name: str) -> Any:
        """Constants, error and struct classes come from pynvml; its functions never do."""
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(pynvml, name)
        if inspect.isfunction(value) and name not in _PURE_HELPERS:
            raise AttributeError(f"FakeNvml does not implement pynvml.{name}")
        setattr(self, name, value)  # later lookups find it without coming here
        return value

    def now(self) -> float:
        """Simulated seconds since the scenario started."""
        return max(0.0, float(self._clock()))

    def enter(self, name: str, handle: Any = None, device: bool = False) -> FakeGpu | None:
        """Count the call, then answer what NVML answers before any value: slow calls, not
        initialised, missing function, bad handle, lost GPU, error storm, NOT_SUPPORTED."""
        with self.lock:
            self.calls[name] += 1
            t = self.now()
        gpu = self._lookup(handle) if device else None
        index = None if gpu is None else gpu.index
        self.maybe_slow(name, t, index)
        if self._refcount == 0:
            fail(P.NVML_ERROR_UNINITIALIZED)
        if SYMBOLS.get(name, name) in self.missing:
            self._function_missing(name)
        if device and gpu is None:
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        if gpu is not None and gpu.active("gpu_lost", t):  # every query, index and UUID too
            fail(P.NVML_ERROR_GPU_IS_LOST)
        if any(f.covers(name) for f in self.faults("segfault", t, index)):
            raise ProcessKilled(name)
        if isinstance(handle, FakeMigHandle) and name not in MIG_HANDLE_FUNCTIONS:
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        for fault in self.faults("error_storm", t, index):
            if fault.covers(name) and (fault.functions or name not in _INIT):
                raise getattr(P, f"NVMLError_{fault.error}")()
        if gpu is not None and any(f.covers(name) for f in self.faults("not_supported", t, index)):
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def maybe_slow(self, name: str, t: float, gpu: int | None) -> None:
        """Latency, slow calls and hangs: all outside the global lock, so a call that blocks
        on one GPU's handle delays no call on another GPU."""
        delay = call_seconds(self.scenario.latency, name)
        if delay:
            self._sleep(delay)
        for fault in self.faults("slow_call", t, gpu):
            if fault.covers(name):
                self._sleep(fault.seconds)
        if gpu is not None:
            self._hang(name, gpu)

    def _hang(self, name: str, gpu: int) -> None:
        """Block while a `hang` fault covers this call on this GPU (in simulated time)."""
        while not self._hangs_released.is_set():
            if not any(f.covers(name) for f in self.faults("hang", self.now(), gpu)):
                return
            self._hangs_released.wait(HANG_POLL_S)

    def release_hangs(self) -> None:
        """End every hang now and for good (a test's clean-up, so no thread stays blocked)."""
        self._hangs_released.set()

    def nvml_index(self, gpu: int) -> int:
        """The NVML index of scenario GPU `gpu` (its place among the enumerated GPUs)."""
        return self.enumerated.index(gpu)

    def faults(self, kind: str, t: float, gpu: int | None) -> list[Fault]:
        """Faults of `kind` active at t for this GPU (None: a call with no device)."""
        return [
            f
            for f in self.scenario.faults_of(kind)
            if f.active(t) and (not f.gpus or (gpu is not None and gpu in f.gpus))
        ]

    def _lookup(self, handle: Any) -> FakeGpu | None:
        if isinstance(handle, FakeHandle) and handle._owner is self:
            gpu = self.gpus[handle.index]
            if not isinstance(handle, FakeMigHandle) or handle.mig_index < len(gpu.mig):
                return gpu
        return None

    @staticmethod
    def _function_missing(name: str) -> None:
        if name == "nvmlDeviceGetComputeRunningProcesses":
            # pynvml's @throwOnVersionMismatch turns FunctionNotFound into this
            raise P.NVMLLibraryMismatchError(f"{name}: the NVML library lacks {SYMBOLS[name]}")
        fail(P.NVML_ERROR_FUNCTION_NOT_FOUND)
