"""The agent's protobuf decoder reads the kubelet's answers as protobuf itself does.

The oracle is protobuf's own runtime: answers are encoded by the classes protoc generated from
the kubelet's api.proto (`suanli_sim/podresources_v1`), with every field the kubelet fills that
the agent does not read (cpu_ids packed, memory, topology, dynamic_resources), with fields of
numbers the proto does not know in every wire type, and cut or garbled. Cut or garbled, an
answer is read by protobuf with the schema of the fields the agent reads (the rest are unknown
to both, skipped by both): where protobuf's parser rejects it the agent's decoder does too,
and where it accepts it both read the same.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from agent.hw.podresources_wire import WireError, allocatable_response, list_response
from suanli_sim.podresources_v1 import api_pb2


def kubelet_pod(index: int) -> Any:
    """A pod as a 1.31 kubelet lists it, every field filled."""
    numa = api_pb2.TopologyInfo(nodes=[api_pb2.NUMANode(ID=index % 2)])
    gpus = api_pb2.ContainerDevices(
        resource_name="nvidia.com/gpu",
        device_ids=[f"GPU-{index:08x}-0000-4000-8000-00000000000{g}" for g in range(2)],
        topology=numa,
    )
    rdma = api_pb2.ContainerDevices(resource_name="rdma/ib", device_ids=["mlx5_0"])
    memory = api_pb2.ContainerMemory(memory_type="hugepages-1Gi", size=2 << 30, topology=numa)
    claim = api_pb2.DynamicResource(
        claim_name=f"claim-{index}",
        claim_namespace="team-a",
        claim_resources=[
            api_pb2.ClaimResource(
                cdi_devices=[api_pb2.CDIDevice(name="nvidia.com/gpu=0")],
                driver_name="gpu.nvidia.com",
                pool_name="node-7",
                device_name="gpu-0",
            )
        ],
    )
    trainer = api_pb2.ContainerResources(
        name="trainer",
        devices=[gpus, rdma],
        cpu_ids=list(range(index % 64, index % 64 + 16)),
        memory=[memory],
        dynamic_resources=[claim],
    )
    sidecar = api_pb2.ContainerResources(name="sidecar", cpu_ids=[1])
    return api_pb2.PodResources(
        name=f"train-{index}", namespace="team-a", containers=[trainer, sidecar]
    )


def as_plain(pods: Any) -> list[tuple[str, str, list[tuple[str, list[tuple[str, list[str]]]]]]]:
    """Pods (protobuf's or the agent's) as the fields the agent reads."""
    return [
        (
            pod.name,
            pod.namespace,
            [
                (c.name, [(d.resource_name, list(d.device_ids)) for d in c.devices])
                for c in pod.containers
            ],
        )
        for pod in pods
    ]


def test_a_full_list_answer_reads_as_protobuf_reads_it() -> None:
    answer = api_pb2.ListPodResourcesResponse(pod_resources=[kubelet_pod(i) for i in range(3)])
    data = answer.SerializeToString()
    assert as_plain(list_response(data)) == as_plain(answer.pod_resources)
    assert list_response(data)[0].containers[0].devices[0].device_ids[1] == (
        "GPU-00000000-0000-4000-8000-000000000001"
    )


def test_2000_pods_read_whole() -> None:
    answer = api_pb2.ListPodResourcesResponse(pod_resources=[kubelet_pod(i) for i in range(2000)])
    data = answer.SerializeToString()
    assert len(data) > 512 * 1024
    pods = list_response(data)
    assert len(pods) == 2000
    assert as_plain(pods) == as_plain(answer.pod_resources)


def test_an_allocatable_answer_keeps_its_devices() -> None:
    answer = api_pb2.AllocatableResourcesResponse(
        devices=[
            api_pb2.ContainerDevices(resource_name="nvidia.com/gpu", device_ids=["0", "1"]),
            api_pb2.ContainerDevices(resource_name="nvidia.com/mig-1g.10gb", device_ids=["MIG-a"]),
        ],
        cpu_ids=list(range(2, 224)),
        memory=[api_pb2.ContainerMemory(memory_type="memory", size=1 << 40)],
    )
    devices = allocatable_response(answer.SerializeToString())
    assert [(d.resource_name, list(d.device_ids)) for d in devices] == [
        ("nvidia.com/gpu", ["0", "1"]),
        ("nvidia.com/mig-1g.10gb", ["MIG-a"]),
    ]


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


UNKNOWN_FIELDS = {  # a field number api.proto does not have, in each wire type
    "varint": key(9, 0) + varint(2**63 + 5),
    "fixed64": key(10, 1) + struct.pack("<d", 1.5),
    "length": key(11, 2) + varint(3) + b"abc",
    "group": key(12, 3) + key(1, 0) + varint(7) + key(2, 2) + b"\x01x" + key(12, 4),
    "nested group": key(13, 3) + key(14, 3) + key(14, 4) + key(13, 4),
    "fixed32": key(15, 5) + struct.pack("<I", 7),
    "string field as varint": key(1, 0) + varint(1),  # a known number, another wire type
}


@pytest.mark.parametrize("unknown", UNKNOWN_FIELDS.values(), ids=UNKNOWN_FIELDS.keys())
def test_unknown_fields_of_every_wire_type_are_skipped_at_every_level(unknown: bytes) -> None:
    devices = key(1, 2) + varint(14) + b"nvidia.com/gpu" + unknown + key(2, 2) + b"\x03GPU"
    container = key(1, 2) + b"\x01c" + unknown + key(2, 2) + varint(len(devices)) + devices
    pod = unknown + key(1, 2) + b"\x01p" + key(2, 2) + b"\x02ns"
    pod += key(3, 2) + varint(len(container)) + container
    data = unknown + key(1, 2) + varint(len(pod)) + pod + unknown
    oracle = api_pb2.ListPodResourcesResponse.FromString(data)
    assert as_plain(list_response(data)) == as_plain(oracle.pod_resources)
    assert as_plain(list_response(data)) == [("p", "ns", [("c", [("nvidia.com/gpu", ["GPU"])])])]


def the_fields_the_agent_reads() -> Any:
    """ListPodResourcesResponse as protobuf builds it from a schema of only those fields."""
    field = descriptor_pb2.FieldDescriptorProto
    schema = descriptor_pb2.FileDescriptorProto(
        name="agent_reads.proto", package="agent_reads", syntax="proto3"
    )
    for name, fields in {
        "ContainerDevices": [("resource_name", 1, ""), ("device_ids", 2, "*")],
        "ContainerResources": [("name", 1, ""), ("devices", 2, "ContainerDevices")],
        "PodResources": [
            ("name", 1, ""),
            ("namespace", 2, ""),
            ("containers", 3, "ContainerResources"),
        ],
        "ListPodResourcesResponse": [("pod_resources", 1, "PodResources")],
    }.items():
        message = schema.message_type.add(name=name)
        for field_name, number, kind in fields:
            added = message.field.add(name=field_name, number=number)
            added.label = field.LABEL_REPEATED if kind else field.LABEL_OPTIONAL
            added.type = field.TYPE_STRING if kind in ("", "*") else field.TYPE_MESSAGE
            if added.type == field.TYPE_MESSAGE:
                added.type_name = f".agent_reads.{kind}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("agent_reads.ListPodResourcesResponse")
    )


AGENT_SCHEMA = the_fields_the_agent_reads()


def protobuf_reads(data: bytes) -> Any:
    try:
        return as_plain(AGENT_SCHEMA.FromString(data).pod_resources)
    except DecodeError:
        return None


def agent_reads(data: bytes) -> Any:
    try:
        return as_plain(list_response(data))
    except WireError:
        return None


def test_every_cut_of_an_answer_is_read_or_rejected_as_protobuf_does() -> None:
    data = api_pb2.ListPodResourcesResponse(
        pod_resources=[kubelet_pod(1), kubelet_pod(2)]
    ).SerializeToString()
    rejected = 0
    for end in range(len(data)):
        assert agent_reads(data[:end]) == protobuf_reads(data[:end]), end
        rejected += protobuf_reads(data[:end]) is None
    assert rejected > len(data) // 2


def test_garbled_answers_are_read_or_rejected_as_protobuf_does() -> None:
    rng = random.Random(17)
    data = bytearray(
        api_pb2.ListPodResourcesResponse(pod_resources=[kubelet_pod(3)]).SerializeToString()
    )
    outcomes = {True: 0, False: 0}
    for _ in range(3000):
        garbled = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            garbled[rng.randrange(len(garbled))] = rng.randrange(256)
        expected = protobuf_reads(bytes(garbled))
        assert agent_reads(bytes(garbled)) == expected, garbled.hex()
        outcomes[expected is None] += 1
    assert min(outcomes.values()) > 300  # both kinds of outcome were checked


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\xff\xff\xff\xff\x0f",  # a length far past the end
        b"\x0a\x02\x0a",  # a pod cut inside
        b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # an 11-byte varint
        b"\x0e\x00",  # wire type 6
        b"\x02\x00",  # field number 0
        b"\x1b\x08\x01",  # a group that never ends
        b"\x1b\x24",  # a group ended by another number
        b"\x0a\x04\x0a\x02\xc3\x28",  # a pod name that is not UTF-8
    ],
)
def test_what_protobuf_rejects_is_a_wire_error(data: bytes) -> None:
    assert protobuf_reads(data) is None
    with pytest.raises(WireError):
        list_response(data)
