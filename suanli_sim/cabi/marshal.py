"""The generic path of a C call into the fake: C values in, the scenario engine's answer out.

Value parameters (and handles, turned back into the fake's handles) are the inputs of the fake
NVML's function of the same name; every pointer parameter receives one part of its answer,
written into the caller's memory as nvml.h lays it out: a number into `unsigned int *`, a
string into `char *` of the given length, a handle into `nvmlDevice_t *`, a structure copied
byte for byte (after checking the fake's structure has nvml.h's size).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from suanli_sim.binding import pynvml
from suanli_sim.cabi.header import Header, Param, Prototype

__all__ = ["Marshal", "Outcome", "call_generic"]

P = pynvml


class Outcome(Exception):
    """Ends a C call early with this NVML return code (a wrong argument, a short buffer)."""

    def __init__(self, code: int, why: str = "") -> None:
        super().__init__(why or str(code))
        self.code = code


class Marshal(Protocol):
    """What the adapters need from the library: the header, handles both ways."""

    header: Header

    def handle_in(self, ctype: str, address: int | None) -> Any: ...

    def handle_out(self, value: Any) -> int: ...

    def answer_problem(self, function: str, problem: str) -> None: ...


def split(m: Marshal, proto: Prototype, values: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(inputs for the fake, [(param, address or (address, length))] to write the answer to)."""
    inputs: list[Any] = []
    outs: list[Any] = []
    params = proto.params
    skip = False
    for i, (param, value) in enumerate(zip(params, values, strict=True)):
        if skip:
            skip = False
            continue
        if m.header.is_handle(param.ctype) and not param.is_pointer:
            inputs.append(m.handle_in(param.ctype, value))
        elif param.is_pointer and param.ctype == "char":
            skip = i + 1 < len(params) and not params[i + 1].is_pointer
            outs.append((param, (value, int(values[i + 1]) if skip else 0)))
        elif param.is_pointer:
            outs.append((param, value))
        else:
            inputs.append(int(value))
    return inputs, outs


def write(m: Marshal, function: str, param: Param, where: Any, answer: Any) -> None:
    """Write one part of the fake's answer where the caller's pointer points."""
    if param.ctype == "char":
        address, length = where
        write_string(address, length, answer)
        return
    if not where:
        raise Outcome(P.NVML_ERROR_INVALID_ARGUMENT, f"{param.name} is NULL")
    if m.header.is_handle(param.ctype):
        ctypes.c_void_p.from_address(where).value = m.handle_out(answer)
        return
    struct = m.header.struct(param.ctype)
    if struct is None:
        scalar = m.header.ctype_of(param.ctype)
        raw = answer.value if isinstance(answer, ctypes._SimpleCData) else answer
        scalar.from_address(where).value = int(raw)
        return
    size = ctypes.sizeof(struct)
    if ctypes.sizeof(answer) != size:
        m.answer_problem(
            function,
            f"the fake answered a {type(answer).__name__} of {ctypes.sizeof(answer)} bytes; "
            f"nvml.h's {param.ctype} has {size}",
        )
        raise Outcome(P.NVML_ERROR_UNKNOWN)
    ctypes.memmove(where, ctypes.byref(answer), size)


def write_string(address: int | None, length: int, text: Any) -> None:
    data = text if isinstance(text, bytes) else str(text).encode()
    if not address:
        raise Outcome(P.NVML_ERROR_INVALID_ARGUMENT, "buffer is NULL")
    if len(data) + 1 > length:
        raise Outcome(P.NVML_ERROR_INSUFFICIENT_SIZE, f"{len(data) + 1} > {length}")
    ctypes.memmove(address, data + b"\0", len(data) + 1)


def call_generic(
    m: Marshal, proto: Prototype, method: Callable[..., Any], values: Sequence[Any]
) -> None:
    """Call the fake with the inputs and write its answer to the outputs."""
    inputs, outs = split(m, proto, values)
    for param, where in outs:  # NVML checks its output pointers before answering
        if not (where[0] if param.ctype == "char" else where):
            raise Outcome(P.NVML_ERROR_INVALID_ARGUMENT, f"{param.name} is NULL")
    answer = method(*inputs)
    if len(outs) == 1:
        write(m, proto.name, outs[0][0], outs[0][1], answer)
        return
    if outs and len(answer) != len(outs):
        m.answer_problem(proto.name, f"{len(answer)} answers for {len(outs)} pointers")
        raise Outcome(P.NVML_ERROR_UNKNOWN)
    for (param, where), part in zip(outs, answer or (), strict=False):
        write(m, proto.name, param, where, part)
