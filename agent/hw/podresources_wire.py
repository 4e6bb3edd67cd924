"""The kubelet's PodResources v1 answers, read from protobuf's wire format by hand.

Only the fields the agent uses are kept (the message and field numbers of
k8s.io/kubelet/pkg/apis/podresources/v1/api.proto, copied in `suanli_sim/podresources_v1/`):

    ListPodResourcesResponse      1 pod_resources: PodResources
    PodResources                  1 name, 2 namespace, 3 containers: ContainerResources
    ContainerResources            1 name, 2 devices: ContainerDevices
    ContainerDevices              1 resource_name, 2 device_ids (repeated string)
    AllocatableResourcesResponse  1 devices: ContainerDevices

Every other field, of any wire type (the kubelet adds cpu_ids packed, memory, topology,
dynamic_resources), is skipped, as protobuf's parsers skip unknown fields; so is a known field
sent with another wire type than its own. Input that does not parse (a varint or a length
running past the end, a wire type 6 or 7, a field number 0, an unmatched group, a string that
is not UTF-8) raises `WireError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = range(6)
_MAX_DEPTH = 64  # nested groups, as protobuf's own recursion limit bounds them
Chunk = bytes | memoryview


class WireError(ValueError):
    """Not a protobuf message."""


@dataclass(frozen=True)
class ContainerDevices:
    resource_name: str
    device_ids: tuple[str, ...]


@dataclass(frozen=True)
class ContainerResources:
    name: str
    devices: tuple[ContainerDevices, ...]


@dataclass(frozen=True)
class PodResources:
    name: str
    namespace: str
    containers: tuple[ContainerResources, ...]


def list_response(data: Chunk) -> tuple[PodResources, ...]:
    """A ListPodResourcesResponse's pods."""
    return tuple(map(_pod, _fields(data).get(1, ())))


def allocatable_response(data: Chunk) -> tuple[ContainerDevices, ...]:
    """An AllocatableResourcesResponse's devices."""
    return tuple(map(_devices, _fields(data).get(1, ())))


def _pod(data: memoryview) -> PodResources:
    found = _fields(data)
    containers = tuple(map(_container, found.get(3, ())))
    return PodResources(_string(found, 1), _string(found, 2), containers)


def _container(data: memoryview) -> ContainerResources:
    found = _fields(data)
    return ContainerResources(_string(found, 1), tuple(map(_devices, found.get(2, ()))))


def _devices(data: memoryview) -> ContainerDevices:
    found = _fields(data)
    return ContainerDevices(_string(found, 1), tuple(map(_text, found.get(2, ()))))


def _fields(data: Chunk) -> dict[int, list[memoryview]]:
    """Field number -> the values of its length-delimited occurrences, in order."""
    found: dict[int, list[memoryview]] = {}
    for number, value in _lengths(data):
        found.setdefault(number, []).append(value)
    return found


def _string(found: dict[int, list[memoryview]], number: int) -> str:
    """A singular string field: its last occurrence wins, as in protobuf's parsers."""
    values = [_text(value) for value in found.get(number, ())]
    return values[-1] if values else ""


def _text(value: memoryview) -> str:
    try:
        return str(value, "utf-8")
    except UnicodeDecodeError:
        raise WireError("a string field that is not UTF-8") from None


def _lengths(data: Chunk) -> Iterator[tuple[int, memoryview]]:
    """(field number, value) of each length-delimited field; every other field skipped."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        key, pos = _varint(view, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == LENGTH:
            length, pos = _varint(view, pos)
            end = pos + length
            if end > len(view):
                raise WireError("a length-delimited field running past the end")
            yield number, view[pos:end]
            pos = end
        else:
            pos = _skip(view, pos, number, wire_type, 0)


def _skip(view: memoryview, pos: int, number: int, wire_type: int, depth: int) -> int:
    """The position after the value of a field of another wire type than LENGTH."""
    if wire_type == VARINT:
        return _varint(view, pos)[1]
    if wire_type in (FIXED64, FIXED32):
        end = pos + (8 if wire_type == FIXED64 else 4)
        if end > len(view):
            raise WireError("a fixed-size field running past the end")
        return end
    if wire_type == START_GROUP and depth < _MAX_DEPTH:
        while pos < len(view):
            key, pos = _varint(view, pos)
            if key & 7 == END_GROUP:
                if key >> 3 != number:
                    raise WireError("a group ended by another field number")
                return pos
            if key >> 3 == 0:
                raise WireError("field number 0")
            if key & 7 == LENGTH:
                length, pos = _varint(view, pos)
                pos += length
                if pos > len(view):
                    raise WireError("a length-delimited field running past the end")
            else:
                pos = _skip(view, pos, key >> 3, key & 7, depth + 1)
        raise WireError("a group never ended")
    raise WireError(f"wire type {wire_type} here")


def _varint(view: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(view):
        octet = view[pos]
        pos += 1
        value |= (octet & 0x7F) << shift
        if not octet & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise WireError("a varint over 10 bytes")
    raise WireError("a varint running past the end")
