"""What a caller hands the C library, checked against nvml.h before the call is made.

A real driver cannot tell a pointer from a structure copied onto the stack: it reads whatever
is there. These checks see the Python objects (ctypes) the binding passes and name the problem:
a structure or number where nvml.h wants a pointer, a pointer where it wants a value, a buffer
smaller than the structure the driver writes, a `version` field nvml.h does not define.
"""

from __future__ import annotations

import ctypes
import re
from typing import Any

from suanli_sim.cabi.header import Header, Param, Prototype

__all__ = ["problem_with"]

_VERSIONED = re.compile(r"nvml(\w+)_v(\d+)_t")


def _target(arg: Any) -> tuple[Any, bool]:
    """(the object a pointer argument points to, whether it is an array); (None, False): NULL."""
    obj = getattr(arg, "_obj", None)  # ctypes.byref(obj)
    if obj is None and isinstance(arg, ctypes._Pointer):
        obj = arg.contents if arg else None
    if obj is None and isinstance(arg, ctypes.Array):
        obj = arg
    return obj, isinstance(obj, ctypes.Array)


def _describe(arg: Any) -> str:
    if isinstance(arg, ctypes.Structure | ctypes.Union):
        return f"a {type(arg).__name__} structure by value"
    return f"{type(arg).__name__} {arg!r}"


def _accepted_versions(header: Header, ctype: str) -> dict[int, int]:
    """{version value: structure size} of every version nvml.h defines for this family."""
    name = header.types.resolve(ctype)
    plain = header.version_of(name)
    match = _VERSIONED.fullmatch(name)
    if match is None:
        struct = header.struct(name)
        return {} if plain is None or struct is None else {plain: ctypes.sizeof(struct)}
    family, out = match.group(1), {}
    for version in range(1, 16):
        struct = header.struct(f"nvml{family}_v{version}_t")
        if struct is not None and any(f[0] == "version" for f in struct._fields_):
            out[ctypes.sizeof(struct) | (version << 24)] = ctypes.sizeof(struct)
    return out


def _pointer_problem(header: Header, param: Param, arg: Any) -> str | None:
    wants = f"nvml.h wants `{param.ctype} *{param.name}` (a pointer)"
    if arg is None:
        return None
    if isinstance(arg, ctypes._SimpleCData | ctypes.Structure | ctypes.Union | int):
        if isinstance(arg, ctypes.c_void_p | ctypes.c_char_p):
            return None
        return f"{_describe(arg)} where {wants}: a real driver would crash or corrupt memory"
    target, is_array = _target(arg)
    if target is None:
        return None
    size = ctypes.sizeof(target._type_ if is_array else target)
    struct = header.struct(param.ctype)
    if struct is None:
        return _scalar_size_problem(header, param, size, wants)
    versions = _accepted_versions(header, param.ctype)
    if versions and not is_array:
        return _version_problem(param, target, size, versions)
    needed = ctypes.sizeof(struct)
    if (size != needed) if is_array else (size < needed):
        return (
            f"{type(target).__name__} of {size} bytes where nvml.h's {param.ctype} has "
            f"{needed}: the driver would write past the caller's buffer"
        )
    return None


def _scalar_size_problem(header: Header, param: Param, size: int, wants: str) -> str | None:
    if param.ctype in ("char", "void") or param.pointers > 1:
        return None
    try:
        needed = ctypes.sizeof(header.ctype_of(param.ctype))
    except KeyError:
        return None
    if size < needed:
        return f"a {size}-byte buffer where {wants} to {needed} bytes"
    return None


def _version_problem(param: Param, target: Any, size: int, versions: dict[int, int]) -> str | None:
    version = int(getattr(target, "version", 0))
    if version not in versions:
        known = ", ".join(f"{v:#x}" for v in sorted(versions))
        return f"{param.ctype}.version is {version:#x}; nvml.h defines {known}"
    if size < versions[version]:
        return (
            f"{type(target).__name__} of {size} bytes claims version {version:#x}, "
            f"a structure of {versions[version]} bytes"
        )
    return None


def _value_problem(header: Header, param: Param, arg: Any) -> str | None:
    if header.is_handle(param.ctype):
        if isinstance(arg, ctypes._Pointer | ctypes.c_void_p) or arg is None:
            return None
        return f"{_describe(arg)} where nvml.h wants the handle `{param.ctype} {param.name}`"
    if isinstance(arg, bool) or not isinstance(arg, int | ctypes._SimpleCData):
        return f"{_describe(arg)} where nvml.h wants the value `{param.ctype} {param.name}`"
    return None


def problem_with(header: Header, prototype: Prototype, args: tuple[Any, ...]) -> str | None:
    """Why these arguments break nvml.h's prototype; None when they fit."""
    params = prototype.params
    if len(args) != len(params):
        return f"{len(args)} arguments where nvml.h declares {len(params)}"
    for param, arg in zip(params, args, strict=True):
        check = _pointer_problem if param.is_pointer else _value_problem
        problem = check(header, param, arg)
        if problem is not None:
            return problem
    return None
