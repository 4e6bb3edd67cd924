"""NVIDIA's nvml.h, read: every function's parameters and the layout of the structures they take.

The header comes from NVIDIA's `nvidia-nvml-dev` wheel (the `test` extra). Nothing here is
written by hand from memory: a prototype's parameter types, whether each is a pointer, and the
size of every structure a pointer points to (built as ctypes from the header's own fields, so
`sizeof` is the C compiler's on this platform) are what the header says.
"""

from __future__ import annotations

import ctypes
import functools
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from suanli_sim.cabi.header_types import BASE, TypeTable, parse_typedefs

__all__ = ["Header", "HeaderMissing", "Param", "Prototype", "header", "header_path"]

_PROTOTYPE = re.compile(
    r"(?:DEPRECATED\([^)]*\)\s*)?nvmlReturn_t\s+DECLDIR\s+(nvml\w+)\s*\(([^;{]*?)\)\s*;", re.S
)


class HeaderMissing(RuntimeError):
    """nvml.h is not installed (the `test` extra brings it)."""


@dataclass(frozen=True)
class Param:
    """One parameter: its type name without qualifiers, and how many `*` follow it."""

    name: str
    ctype: str
    pointers: int
    const: bool

    @property
    def is_pointer(self) -> bool:
        return self.pointers > 0


@dataclass(frozen=True)
class Prototype:
    name: str
    params: tuple[Param, ...]


def header_path() -> Path:
    """nvml.h as installed by the `nvidia-nvml-dev` wheel (found through its file list)."""
    try:
        files = metadata.files("nvidia-nvml-dev") or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == "nvml.h":
            return Path(str(file.locate()))
    raise HeaderMissing(
        "nvml.h not found: install the test extra (pip install -e '.[test]'), which brings "
        "NVIDIA's nvidia-nvml-dev wheel"
    )


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _param(text: str, position: int) -> Param | None:
    text = " ".join(text.split())
    if text in ("void", ""):
        return None
    const = "const " in f"{text} "
    words = text.replace("const ", "").replace("*", " * ").split()
    pointers = words.count("*")
    words = [w for w in words if w != "*"]
    name = words[-1] if len(words) > 1 else f"arg{position}"
    ctype = " ".join(words[:-1] if len(words) > 1 else words)
    return Param(name, ctype.replace("struct ", ""), pointers, const)


class Header:
    """The parsed header: `prototypes` by function name, `types` (structures, enums, handles)."""

    def __init__(self, text: str, path: Path | None = None) -> None:
        self.path = path
        body = _strip_comments(text)
        self.prototypes: dict[str, Prototype] = {}
        for match in _PROTOTYPE.finditer(body):
            parts = [_param(p, i) for i, p in enumerate(match.group(2).split(","))]
            params = tuple(p for p in parts if p is not None)
            self.prototypes[match.group(1)] = Prototype(match.group(1), params)
        self.types: TypeTable = parse_typedefs(body)

    def prototype(self, name: str) -> Prototype:
        try:
            return self.prototypes[name]
        except KeyError:
            raise KeyError(f"nvml.h declares no function {name}") from None

    def is_handle(self, ctype: str) -> bool:
        """An opaque handle type (`typedef struct nvmlDevice_st* nvmlDevice_t`)."""
        return ctype in self.types.handles

    def ctype_of(self, ctype: str) -> Any:
        """The ctypes type a value parameter of this C type is passed as."""
        if self.is_handle(ctype):
            return ctypes.c_void_p
        if ctype in self.types.enums:
            return ctypes.c_uint  # pynvml passes its enums as c_uint, the same 4 bytes
        resolved = self.types.resolve(ctype)
        if resolved in BASE:
            return BASE[resolved]
        raise KeyError(f"nvml.h type {ctype} is not a scalar")

    def struct(self, ctype: str) -> Any:
        """The structure (or union) a type names, laid out from nvml.h; None for a scalar."""
        return self.types.structure(ctype)

    def layout(self, ctype: str) -> Any:
        """The structure a type names; KeyError when nvml.h has none by that name."""
        struct = self.struct(ctype)
        if struct is None:
            raise KeyError(f"nvml.h has no structure {ctype}")
        return struct

    def version_of(self, ctype: str) -> int | None:
        """The `version` value nvml.h asks callers to set in this structure, if it has one."""
        return self.types.struct_version(ctype)


@functools.cache
def header() -> Header:
    path = header_path()
    return Header(path.read_text(encoding="utf-8", errors="replace"), path)
