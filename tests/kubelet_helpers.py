"""A real kubelet PodResources server on a unix socket, and the whole agent over a simulated node
whose files (and the kubelet's socket) sit under a short root, for tests/test_pod_resources.py and
tests/test_slurm_devices.py."""

from __future__ import annotations

import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from agent.app import Agent, build
from agent.config import Config, with_overrides
from agent.sampler import Snapshot
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import load_scenario, parse_scenario
from suanli_sim.host import simulated_parts
from suanli_sim.podresources_v1 import api_pb2, api_pb2_grpc
from tests.gpu_helpers import SimClock

QWEN_UID = "3f6c2a8e-9b1d-4c7e-a5f0-2d8b6e4c1a97"
NOTEBOOK_UID = "8d2e7b1c-4a6f-4e39-b0d5-71c9e3a2f864"
PROXY_UID = "c1b7f2d4-2e5a-4f0c-9d83-5a6e0b7c3f12"
QWEN = ("llm-serving", "qwen-72b-infer-7d9f8")
NOTEBOOK = ("research", "notebook-7c4f9b-x2kq")
SCENARIO = f"""
name: pods-hold-gpus
seed: 7
driver_version: "565.57.01"
gpus: {{model: H100-SXM5-80GB, count: 8, workload: training}}
jobs:
  - id: qwen-72b-infer
    scheduler: kubernetes
    namespace: {QWEN[0]}
    pod: {QWEN[1]}
    pod_uid: {QWEN_UID}
    container_id: {"5d" * 32}
    comm: vllm
    gpus: [0, 1, 2, 3]
    user: 0
"""
SOCKET = "var/lib/kubelet/pod-resources/kubelet.sock"


class Kubelet(api_pb2_grpc.PodResourcesListerServicer):
    """The kubelet's PodResources service, answering as told."""

    def __init__(self, uuids: list[str]) -> None:
        self.uuids = uuids
        self.list_status: grpc.StatusCode | None = None
        self.allocatable_status: grpc.StatusCode | None = None
        self.unhealthy: set[int] = set()  # GPUs the device plugin no longer offers
        self.hang = threading.Event()  # set: List waits until `release`
        self.release = threading.Event()
        self.calls = 0
        self.pods: list[Any] | None = None  # instead of the vLLM and notebook pods

    def List(self, request: Any, context: Any) -> Any:  # the proto names the methods
        self.calls += 1
        if self.hang.is_set():
            self.release.wait(30)
        if self.list_status is not None:
            context.abort(self.list_status, "PodResources API is not available")
        gpus = self.uuids
        if self.pods is not None:
            return api_pb2.ListPodResourcesResponse(pod_resources=self.pods)
        return api_pb2.ListPodResourcesResponse(
            pod_resources=[
                pod(*QWEN, ("vllm", gpus[0:4], 0), ("metrics-sidecar", [], 0)),
                pod(*NOTEBOOK, ("notebook", gpus[4:8], 1)),
                pod("kube-system", "kube-proxy-8xk2p", ("kube-proxy", [], 0)),
            ]
        )

    def GetAllocatableResources(self, request: Any, context: Any) -> Any:
        if self.allocatable_status is not None:
            context.abort(self.allocatable_status, "GetAllocatableResources disabled")
        offered = [u for i, u in enumerate(self.uuids) if i not in self.unhealthy]
        devices = [api_pb2.ContainerDevices(resource_name="nvidia.com/gpu", device_ids=offered)]
        return api_pb2.AllocatableResourcesResponse(devices=devices, cpu_ids=list(range(2, 224)))


def pod(
    namespace: str,
    name: str,
    *containers: tuple[str, list[str], int],
    resource: str = "nvidia.com/gpu",
) -> Any:
    made = []
    for container, gpus, numa in containers:
        topology = api_pb2.TopologyInfo(nodes=[api_pb2.NUMANode(ID=numa)])
        held = api_pb2.ContainerDevices(resource_name=resource, device_ids=gpus, topology=topology)
        devices = [held] if gpus else []
        made.append(api_pb2.ContainerResources(name=container, devices=devices, cpu_ids=[4, 5]))
    return api_pb2.PodResources(name=name, namespace=namespace, containers=made)


class Node:
    """The whole agent over the simulated node, its files under a short root (unix socket paths
    are limited to 107 bytes)."""

    def __init__(self, root: Path, scenario: str = SCENARIO, **jobs: str) -> None:
        self.root = root
        self.clock = SimClock(60.0)
        loaded = parse_scenario(scenario) if "\n" in scenario else load_scenario(scenario)
        self.fake = FakeNvml(loaded, clock=self.clock, sleep=lambda s: None)
        overrides = {"interval": "1s", "collectors.jobs.allocation_refresh": "100ms"}
        overrides |= {f"collectors.jobs.{key}": value for key, value in jobs.items()}
        self.agent: Agent = build(
            with_overrides(Config(), overrides),
            parts=simulated_parts(self.fake, root),
        )
        self.server: grpc.Server | None = None

    @property
    def socket(self) -> Path:
        return self.root / SOCKET

    def uuids(self) -> list[str]:
        info = labelled(self.sample(), "suanli_gpu_info")
        return [labels["uuid"] for labels in sorted(info, key=lambda x: int(x["gpu"]))]

    def serve(self, kubelet: Kubelet) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        api_pb2_grpc.add_PodResourcesListerServicer_to_server(kubelet, self.server)
        self.server.add_insecure_port(f"unix://{self.socket}")
        self.server.start()

    def sample(self, at: float | None = None) -> Snapshot:
        if at is not None:
            self.clock.t = at
        return self.agent.sampler.sample_once()

    def wait_for(self, reason: str, timeout: float = 10.0) -> Snapshot:
        """Sample until the kubelet source says `reason`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snapshot = self.sample()
            if source_state(snapshot).get("kubelet", (None, ""))[1] == reason:
                return snapshot
            time.sleep(0.05)
        raise AssertionError(f"kubelet source never said {reason}: {source_state(snapshot)}")

    def close(self) -> None:
        if self.server is not None:
            self.server.stop(grace=0)
        self.agent.sampler.stop()
        for collector in self.agent.collectors:
            collector.close()


def series(snapshot: Snapshot, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for result in snapshot.results:
        for sample in result.samples:
            if sample.spec.name == name:
                found[tuple(zip(sample.spec.labels, sample.labels, strict=True))] = sample.value
    return found


def labelled(snapshot: Snapshot, name: str) -> list[dict[str, str]]:
    return [dict(key) for key in series(snapshot, name)]


def jobs_on(snapshot: Snapshot) -> dict[int, list[tuple[str, str, str, str]]]:
    """GPU index -> (job_id, namespace, pod, container) of each job info series on it."""
    found: dict[int, list[tuple[str, str, str, str]]] = {}
    for labels in labelled(snapshot, "suanli_gpu_job_info"):
        entry = (labels["job_id"], labels["namespace"], labels["pod"], labels["container"])
        found.setdefault(int(labels["gpu"]), []).append(entry)
    return found


def source_state(snapshot: Snapshot) -> dict[str, tuple[float, str]]:
    return {
        dict(key)["source"]: (value, dict(key)["reason"])
        for key, value in series(snapshot, "suanli_job_allocation_source_up").items()
    }


def pod_log_dirs(root: Path) -> None:
    """The kubelet's /var/log/pods: one `<namespace>_<pod>_<uid>` directory per pod."""
    for (namespace, name), uid in {
        QWEN: QWEN_UID,
        NOTEBOOK: NOTEBOOK_UID,
        ("kube-system", "kube-proxy-8xk2p"): PROXY_UID,
    }.items():
        (root / "var/log/pods" / f"{namespace}_{name}_{uid}" / "main").mkdir(parents=True)


def values(snapshot: Snapshot, name: str, **wanted: str) -> dict[str, float]:
    """{gpu or job_id: value} of a family."""
    found = {}
    for key, value in series(snapshot, name).items():
        labels = dict(key)
        if all(labels.get(k) == v for k, v in wanted.items()):
            found[labels.get("gpu", labels.get("job_id", ""))] = value
    return found
