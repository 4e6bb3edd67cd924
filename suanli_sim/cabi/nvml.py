"""`CAbiNvml(fake)`: NVIDIA's pynvml, answered by one fake NVML through the C interface.

Give it to the agent where the real module goes (`Parts(nvml=...)`, `NvmlGateway(...)`): every
attribute is pynvml's own (constants, structures, error classes, functions); calling a function
runs pynvml's code, which calls the fake C library (`library.py`) while this binding is the
calling thread's, so the scenario engine behind `fake` answers.
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import threading
from typing import Any

from suanli_sim.binding import pynvml
from suanli_sim.cabi import library, violations
from suanli_sim.cabi.header import Header, Prototype
from suanli_sim.cabi.marshal import call_generic
from suanli_sim.fake_calls import FakeHandle

__all__ = ["CAbiNvml"]

P = pynvml


class CAbiNvml:
    """pynvml bound to `fake` (a `FakeNvml`). `fake.calls` counts what reached the fake."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.library = library.install()
        self.header: Header = self.library.header
        self._lock = threading.Lock()
        self._addresses: dict[int, FakeHandle] = {}
        self._buffers: dict[int, ctypes.Array[ctypes.c_char]] = {}  # id(handle) -> its memory

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(P, name)
        if inspect.isfunction(value) and name.startswith("nvml"):
            value = functools.partial(self._call, value)
        setattr(self, name, value)
        return value

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        library.enter(self)
        try:
            return function(*args, **kwargs)
        finally:
            library.leave()

    # --- the library's side ---------------------------------------------------------------
    def answer(self, proto: Prototype, values: tuple[Any, ...]) -> None:
        """Answer one C call with the fake (called from the library's callback)."""
        adapter = library.special(proto.name)
        if adapter is not None:
            adapter(self, self.fake, values)
            return
        call_generic(self, proto, library.method_for(self.fake, proto.name), values)

    def handle_in(self, ctype: str, address: int | None) -> Any:
        """The fake's object behind a handle a caller passed (None: not one of this fake's)."""
        if ctype == "nvmlDevice_t":
            return self._addresses.get(address or 0)
        pointer = library.pointer_type(ctype)
        if pointer is None or not address:
            return None
        # The fake's own object when it has one at this address: it keeps the memory alive.
        if ctype == "nvmlGpmSample_t" and address in self.fake.gpm_samples:
            return self.fake.gpm_samples[address][0]
        return ctypes.cast(address, pointer)

    def handle_out(self, value: Any) -> int:
        """The address a handle crosses the C boundary as."""
        if isinstance(value, FakeHandle):
            with self._lock:
                buffer = self._buffers.get(id(value))
                if buffer is None:
                    buffer = self._buffers[id(value)] = ctypes.create_string_buffer(8)
                    self._addresses[ctypes.addressof(buffer)] = value
                return ctypes.addressof(buffer)
        if isinstance(value, ctypes._Pointer):
            return ctypes.addressof(value.contents)
        raise TypeError(f"not a handle: {value!r}")

    def answer_problem(self, function: str, problem: str) -> None:
        violations.record(function, problem)
