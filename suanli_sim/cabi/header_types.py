"""nvml.h's types as ctypes: structures and unions laid out from their fields, enums, handles,
integer constants (`#define` and enum members, for array sizes) and structure versions."""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BASE", "TypeTable", "parse_typedefs"]

BASE: dict[str, Any] = {
    "char": ctypes.c_char,
    "signed char": ctypes.c_byte,
    "unsigned char": ctypes.c_ubyte,
    "short": ctypes.c_short,
    "unsigned short": ctypes.c_ushort,
    "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint,
    "unsigned": ctypes.c_uint,
    "long": ctypes.c_long,
    "unsigned long": ctypes.c_ulong,
    "long long": ctypes.c_longlong,
    "signed long long": ctypes.c_longlong,
    "signed int": ctypes.c_int,
    "signed short": ctypes.c_short,
    "signed long": ctypes.c_long,
    "unsigned long long": ctypes.c_ulonglong,
    "float": ctypes.c_float,
    "double": ctypes.c_double,
}
_TYPEDEF = re.compile(r"typedef\s+(struct|union|enum)\s*(\w*)\s*\{")
_TAGGED = re.compile(r"(?<!typedef )(struct|union)\s+(\w+)\s*\{")
_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+([^\n]+)$", re.M)
_ALIAS = re.compile(r"typedef\s+(?:struct\s+|union\s+|enum\s+)?([\w ]+?)\s*(\*?)\s*(\w+)\s*;")
_VERSION = re.compile(r"NVML_STRUCT_VERSION\(\s*(\w+)\s*,\s*(\d+)\s*\)")
# Versioned structures whose version constant is a plain number, not NVML_STRUCT_VERSION.
_PLAIN_VERSIONS = {
    "nvmlGpmMetricsGet_t": "NVML_GPM_METRICS_GET_VERSION",
    "nvmlGpmSupport_t": "NVML_GPM_SUPPORT_VERSION",
}


def _closing(text: str, start: int) -> int:
    """Index of the `}` matching the `{` at `start`."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ValueError("unbalanced braces in nvml.h")


def _split_top(body: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in body:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


@dataclass
class TypeTable:
    kinds: dict[str, str] = field(default_factory=dict)  # name -> struct | union
    bodies: dict[str, str] = field(default_factory=dict)
    enums: dict[str, dict[str, int]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    handles: set[str] = field(default_factory=set)
    defines: dict[str, str] = field(default_factory=dict)
    _built: dict[str, Any] = field(default_factory=dict)

    def resolve(self, name: str) -> str:
        seen = set()
        while name in self.aliases and name not in seen:
            seen.add(name)
            name = self.aliases[name]
        return name

    def constant(self, expr: str) -> int:
        """An integer constant expression of defines and enum members (an array size)."""
        expr = expr.strip()
        members = {k: v for values in self.enums.values() for k, v in values.items()}

        def value(match: re.Match[str]) -> str:
            word = match.group(0)
            if word in members:
                return str(members[word])
            if word in self.defines:
                return f"({self.constant(self.defines[word])})"
            raise KeyError(f"nvml.h constant {word} unknown")

        expr = re.sub(r"\(\s*unsigned int\s*\)", "", expr)
        expr = re.sub(r"(?<=\d)[uUlL]+\b", "", expr)
        expr = re.sub(r"\b[A-Za-z_]\w*\b", value, expr)
        if not re.fullmatch(r"[\d\s()+\-*/<>|x&A-Fa-f]+", expr):
            raise ValueError(f"not an integer constant: {expr}")
        return int(eval(expr, {"__builtins__": {}}))  # digits and operators only (checked)

    def structure(self, name: str) -> Any:
        name = self.resolve(name)
        if name not in self.kinds:
            return None
        if name not in self._built:
            self._built[name] = self._layout(name, self.kinds[name], self.bodies[name])
        return self._built[name]

    def struct_version(self, name: str) -> int | None:
        struct = self.structure(name)
        if struct is None or not any(f[0] == "version" for f in struct._fields_):
            return None
        resolved = self.resolve(name)
        plain = _PLAIN_VERSIONS.get(name) or _PLAIN_VERSIONS.get(resolved)
        if plain is not None:
            return self.constant(self.defines[plain])
        match = re.fullmatch(r"nvml(\w+)_v(\d+)_t", resolved)
        if match is None:
            return None
        return int(ctypes.sizeof(struct) | (int(match.group(2)) << 24))

    def _field_type(self, ctype: str, pointer: bool) -> Any:
        if pointer:
            return ctypes.c_void_p
        ctype = ctype.replace("const ", "").strip()
        if ctype in self.handles:
            return ctypes.c_void_p
        resolved = self.resolve(ctype)
        if resolved in BASE:
            return BASE[resolved]
        if resolved in self.enums or ctype in self.enums:
            return ctypes.c_int
        struct = self.structure(resolved)
        if struct is None:
            raise KeyError(f"nvml.h type {ctype} unknown")
        return struct

    def _layout(self, name: str, kind: str, body: str) -> Any:
        fields: list[tuple[Any, ...]] = []
        for i, decl in enumerate(_split_top(body, ";")):
            fields.extend(self._declaration(f"{name}_{i}", decl))
        base = ctypes.Union if kind == "union" else ctypes.Structure
        return type(name, (base,), {"_fields_": fields})

    def _declaration(self, scope: str, decl: str) -> list[tuple[Any, ...]]:
        decl = " ".join(decl.split())
        if "{" in decl:  # a nested struct or union
            kind = "union" if decl.startswith("union") else "struct"
            start = decl.index("{")
            end = _closing(decl, start)
            inner = self._layout(scope, kind, decl[start + 1 : end])
            return [self._declarator(d, inner) for d in decl[end + 1 :].split(",")]
        match = re.match(r"((?:const |unsigned |signed |struct |union |enum )*\w+(?: long)*)", decl)
        if match is None:
            raise ValueError(f"nvml.h declaration not understood: {decl}")
        ctype = match.group(1).replace("struct ", "").replace("union ", "").replace("enum ", "")
        out = []
        for declarator in decl[match.end() :].split(","):
            pointer = "*" in declarator
            out.append(self._declarator(declarator, self._field_type(ctype, pointer)))
        return out

    def _declarator(self, text: str, ftype: Any) -> tuple[Any, ...]:
        text = text.replace("*", "").strip()
        if ":" in text:
            name, bits = text.split(":")
            return (name.strip(), ftype, self.constant(bits))
        dims = re.findall(r"\[([^\]]+)\]", text)
        name = text.split("[")[0].strip()
        for dim in reversed(dims):
            ftype = ftype * self.constant(dim)
        return (name, ftype)


def parse_typedefs(body: str) -> TypeTable:
    table = TypeTable()
    for name, value in _DEFINE.findall(body):
        table.defines[name] = value.strip()
    for match in list(_TYPEDEF.finditer(body)) + list(_TAGGED.finditer(body)):
        kind, tag = match.group(1), match.group(2)
        start = match.end() - 1
        end = _closing(body, start)
        inner = body[start + 1 : end]
        names = re.match(r"\s*([^;]*);", body[end + 1 :])
        declared = [n.strip() for n in (names.group(1) if names else "").split(",") if n.strip()]
        if kind == "enum":
            table.enums.update({n.lstrip("*"): _enum(table, inner) for n in declared})
            continue
        for n in declared if match.re is _TYPEDEF else []:
            if n.startswith("*"):
                table.aliases[n.lstrip("*")] = tag  # a pointer typedef: not laid out
                table.handles.add(n.lstrip("*"))
            else:
                table.kinds[n], table.bodies[n] = kind, inner
        if tag:
            table.kinds[tag], table.bodies[tag] = kind, inner
    for base, pointer, alias in _ALIAS.findall(body):
        base = base.strip()
        if pointer:
            table.handles.add(alias)
        elif alias not in table.kinds and alias != base:
            table.aliases[alias] = base
    return table


def _enum(table: TypeTable, inner: str) -> dict[str, int]:
    members: dict[str, int] = {}
    following = 0
    for item in _split_top(inner, ","):
        name, _, expr = item.partition("=")
        try:
            value = table.constant(expr) if expr.strip() else following
        except (KeyError, ValueError, SyntaxError):
            value = following
        members[name.strip()] = value
        following = value + 1
    table.enums.setdefault("_members", {}).update(members)
    return members
