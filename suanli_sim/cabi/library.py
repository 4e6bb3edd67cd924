"""A libnvidia-ml.so made of ctypes callbacks, installed where pynvml keeps its library.

pynvml loads the driver's library once into the module global `nvmlLib` (`_LoadNvmlLibrary`,
only while it is None) and finds each C function with `getattr(nvmlLib, name)`
(`_nvmlGetFunctionPointer`, cached). `install()` puts a `CLibrary` there: each attribute is a C
function with nvml.h's parameter types, a ctypes callback reached through a real foreign call,
so pynvml's own code runs for every call: its structures, `byref`s, versioned `_v2`/`_v3`
calls, and `NVMLError_*` classes made from the return codes the callbacks give.

Which fake answers is the binding the calling thread is in (`CAbiNvml`, one per fake NVML), so
any number of simulated nodes share the one library. Handles cross the C boundary as addresses:
each fake device handle gets one, event sets and GPM samples are the fake's own ctypes objects.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections import Counter
from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.cabi import violations
from suanli_sim.cabi.checks import problem_with
from suanli_sim.cabi.header import Header, Prototype, header
from suanli_sim.cabi.marshal import Outcome
from suanli_sim.cabi.special import FAKE_NAMES, SPECIAL
from suanli_sim.fake_calls import ProcessKilled

__all__ = ["CFunction", "CLibrary", "current", "install"]

P = pynvml
_local = threading.local()
_install_lock = threading.Lock()
_ERROR_TEXT: dict[int, ctypes.Array[ctypes.c_char]] = {}
_POINTER_TYPES = {
    "nvmlEventSet_t": lambda: ctypes.POINTER(P.struct_c_nvmlEventSet_t),
    "nvmlGpmSample_t": lambda: ctypes.POINTER(P.struct_c_nvmlGpmSample_t),
}


def current() -> Any:
    """The binding (`CAbiNvml`) of the call this thread is making; None outside one."""
    stack: list[Any] = getattr(_local, "stack", [])
    return stack[-1] if stack else None


def enter(binding: Any) -> None:
    _local.stack = [*getattr(_local, "stack", []), binding]


def leave() -> None:
    _local.stack = _local.stack[:-1]


def _error_string(code: int) -> int | None:
    """nvmlErrorString: a static C string per code (pynvml reads it as `c_char_p`)."""
    if code not in _ERROR_TEXT:
        texts = {P.NVML_SUCCESS: "Success", **P.NVMLError._errcode_to_string}  # NVML's own words
        text = texts.get(code, texts[P.NVML_ERROR_UNKNOWN])
        _ERROR_TEXT[code] = ctypes.create_string_buffer(text.encode())
    return ctypes.addressof(_ERROR_TEXT[code])


class CFunction:
    """One C function of the fake library: its arguments are checked against nvml.h, then
    passed through a real C call (ctypes marshalling, as into the driver) to the callback."""

    def __init__(self, library: CLibrary, proto: Prototype) -> None:
        self.name = proto.name
        self.proto = proto
        self.library = library
        self.restype: Any = ctypes.c_int
        argtypes = [self._argtype(p.ctype, p.is_pointer) for p in proto.params]
        self._thunk = ctypes.CFUNCTYPE(ctypes.c_int, *argtypes)(self._callback)

    def _argtype(self, ctype: str, pointer: bool) -> Any:
        return ctypes.c_void_p if pointer else self.library.header.ctype_of(ctype)

    def __call__(self, *args: Any) -> int:
        with self.library._lock:
            self.library.calls[self.name] += 1
        problem = problem_with(self.library.header, self.proto, args)
        if problem is not None:
            violations.record(self.name, problem)
            return int(P.NVML_ERROR_INVALID_ARGUMENT)
        try:
            return int(self._thunk(*args))
        except ctypes.ArgumentError as err:  # a value ctypes cannot pass as nvml.h's type
            violations.record(self.name, f"arguments do not fit nvml.h's prototype: {err}")
            return int(P.NVML_ERROR_INVALID_ARGUMENT)

    def _callback(self, *values: Any) -> int:
        binding = current()
        if binding is None:
            return int(P.NVML_ERROR_UNINITIALIZED)
        try:
            binding.answer(self.proto, values)
        except Outcome as outcome:
            return outcome.code
        except ProcessKilled:
            os.abort()  # a real driver's bad call takes the whole process with it
        except P.NVMLLibraryMismatchError:  # the fake's view of a missing symbol
            return int(P.NVML_ERROR_FUNCTION_NOT_FOUND)
        except P.NVMLError as err:
            return int(err.value)
        except BaseException as err:  # never let a callback's exception turn into SUCCESS
            violations.record(self.name, f"the fake raised {type(err).__name__}: {err}")
            return int(P.NVML_ERROR_UNKNOWN)
        return int(P.NVML_SUCCESS)


class CLibrary:
    """What pynvml finds in `nvmlLib`: the functions nvml.h declares, as C functions."""

    def __init__(self, nvml_h: Header) -> None:
        self.header = nvml_h
        self._functions: dict[str, Any] = {}
        self.calls: Counter[str] = Counter()  # C calls made, by symbol (every binding's)
        self._lock = threading.Lock()
        proto = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint)
        self.nvmlErrorString = proto(_error_string)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.header.prototypes:
            raise AttributeError(name)  # pynvml: NVML_ERROR_FUNCTION_NOT_FOUND
        with self._lock:
            if name not in self._functions:
                self._functions[name] = CFunction(self, self.header.prototypes[name])
            return self._functions[name]


def install() -> CLibrary:
    """Put the fake library where pynvml looks for the driver's (once per process)."""
    with _install_lock:
        if isinstance(P.nvmlLib, CLibrary):
            return P.nvmlLib
        if P.nvmlLib is not None:
            raise RuntimeError("pynvml has already loaded a real NVML library")
        library = CLibrary(header())
        P._nvmlGetFunctionPointer_cache.clear()
        P.nvmlLib = library
        return library


def method_for(fake: Any, symbol: str) -> Any:
    return getattr(fake, FAKE_NAMES.get(symbol, symbol))


def special(symbol: str) -> Any:
    return SPECIAL.get(symbol)


def pointer_type(ctype: str) -> Any:
    make = _POINTER_TYPES.get(ctype)
    return None if make is None else make()
