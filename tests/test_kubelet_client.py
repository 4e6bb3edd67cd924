"""The agent's kubelet client against a real gRPC server (grpcio's C-core, as the other kubelet
tests serve): it never loads grpcio or protobuf itself, and big answers reach it whole:
thousands of pods in many DATA frames, flow control carrying an answer near dcgm-exporter's
16 MiB limit, and one over it refused as a bad answer."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from agent.hw.pod_resources import KubeletError, PodResourcesClient
from suanli_sim.podresources_v1 import api_pb2, api_pb2_grpc
from tests.kubelet_helpers import Kubelet, pod

MIB = 1024 * 1024
UUIDS = [f"GPU-{g:08x}-7c1e-4b2a-9f3d-5e8a1c6b2d40" for g in range(8)]


@pytest.fixture
def socket_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="k8s", dir="/tmp") as folder:
        yield Path(folder) / "kubelet.sock"


def served(kubelet: Kubelet, path: Path) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    api_pb2_grpc.add_PodResourcesListerServicer_to_server(kubelet, server)
    server.add_insecure_port(f"unix://{path}")
    server.start()
    return server


def test_2000_pods_come_whole(socket_path: Path) -> None:
    kubelet = Kubelet(UUIDS)
    # a busy inference node shared by time-slicing: 2,000 pods, each on one GPU's replica
    kubelet.pods = [
        pod(f"team-{n % 7}", f"infer-{n:04d}", ("server", [f"{UUIDS[n % 8]}::{n}"], n % 2))
        for n in range(2000)
    ]
    assert size(kubelet.pods) > 64 * 1024  # past HTTP/2's default window: flow control counts
    server = served(kubelet, socket_path)
    try:
        read = PodResourcesClient(str(socket_path)).read()
    finally:
        server.stop(grace=0)
    assert sorted(read.holders) == UUIDS
    for g, uuid in enumerate(UUIDS):
        assert sorted(ref.pod for ref in read.holders[uuid]) == [
            f"infer-{n:04d}" for n in range(g, 2000, 8)
        ]
    assert read.allocatable == frozenset(UUIDS)


def one_pod_holding(count: int) -> list[object]:
    """A pod holding `count` devices of 260-character ids (each about 263 bytes on the wire)."""
    return [pod("research", "huge", ("lab", [f"{n:0260d}" for n in range(count)], 0))]


def size(pods: list[object]) -> int:
    return int(api_pb2.ListPodResourcesResponse(pod_resources=pods).ByteSize())


def test_an_answer_near_16_mib_flows_and_one_over_it_is_refused(socket_path: Path) -> None:
    kubelet = Kubelet(UUIDS)
    kubelet.pods = one_pod_holding(63_000)
    assert 15 * MIB < size(kubelet.pods) < 16 * MIB
    server = served(kubelet, socket_path)
    try:
        client = PodResourcesClient(str(socket_path), timeout_s=10.0)
        read = client.read()
        assert len(read.holders) == 63_000  # every device id of the answer: all of it was read
        assert read.holders[f"{62_999:0260d}"][0].pod == "huge"
        kubelet.pods = one_pod_holding(64_000)
        assert size(kubelet.pods) > 16 * MIB
        with pytest.raises(KubeletError) as failed:
            client.read()
        assert failed.value.reason == "bad_answer"
    finally:
        server.stop(grace=0)


_READ_IN_A_FRESH_INTERPRETER = """
import json, sys
from agent.hw.pod_resources import PodResourcesClient
answer = PodResourcesClient(sys.argv[1]).read()
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("grpc", "h2", "hpack")
                or m.startswith("google.protobuf"))
print(json.dumps({"gpus": sorted(answer.holders), "allocatable": sorted(answer.allocatable),
                  "loaded": loaded}))
"""


def test_the_agent_reads_the_kubelet_without_grpc_or_protobuf(socket_path: Path) -> None:
    """grpcio and protobuf cost about 18 MiB resident: the agent's process never loads them."""
    kubelet = Kubelet(UUIDS)
    server = served(kubelet, socket_path)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _READ_IN_A_FRESH_INTERPRETER, str(socket_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        server.stop(grace=0)
    read = json.loads(done.stdout)
    assert read == {"gpus": sorted(UUIDS), "allocatable": sorted(UUIDS), "loaded": []}
