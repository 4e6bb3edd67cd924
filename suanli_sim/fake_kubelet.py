"""The kubelet of a simulated node: its PodResources v1 API over gRPC on the node's socket.

`List` names the scenario's Kubernetes jobs active at the simulated time, one container each,
holding their GPUs as NVIDIA's device plugin reports them: `nvidia.com/gpu` with the GPU's UUID,
or for a job on a MIG device (`mig: <n>`) `nvidia.com/mig-<profile>` with the MIG UUID (the
plugin's mixed strategy). A job with `processes_per_gpu: 0` holds its GPUs and runs nothing: only
the kubelet knows it. `GetAllocatableResources` offers every GPU (or MIG device) that is not
lost. The kubelet's `/var/log/pods/<namespace>_<pod>_<uid>` directories are written too.

Started by `suanli_sim.host.simulated_parts` (for the fleet's runtime, on its MIG nodes) for a
scenario with `kubelet: true` (off by default: the gRPC server, grpcio and protobuf, would add
about 20 MiB to the process the benchmarks measure; the agent's own client loads neither); the
socket is `<root>/var/lib/kubelet/pod-resources/kubelet.sock`,
where the agent looks on a simulated node.

It is stopped with the agent that reads it (`Parts.stop`), and whatever still serves when the
interpreter exits (an unexpected error) is stopped then, before Python tears down: a gRPC server
left running past that, or in a process that forks (subprocess with `preexec_fn`), can abort the
process with "epoll_wait error: Bad file descriptor".
"""

from __future__ import annotations

import atexit
import logging
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from suanli_sim.fake_jobs import JobSpec
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.podresources_v1 import api_pb2, api_pb2_grpc

log = logging.getLogger(__name__)

SOCKET = "var/lib/kubelet/pod-resources/kubelet.sock"
STOP_WAIT_S = 5.0  # stop() waits this long at most for the server's threads to end
KUBERNETES = ("kubernetes", "kubernetes-v1")


class FakeKubelet(api_pb2_grpc.PodResourcesListerServicer):
    def __init__(self, fake: FakeNvml) -> None:
        self.fake = fake
        self.jobs = [j for j in fake.scenario.jobs if j.scheduler in KUBERNETES]

    def List(self, request: Any, context: Any) -> Any:  # the proto's method names
        now = self.fake.now()
        pods = [self._pod(job) for job in self.jobs if job.active(now)]
        return api_pb2.ListPodResourcesResponse(pod_resources=pods)

    def GetAllocatableResources(self, request: Any, context: Any) -> Any:
        offered: dict[str, list[str]] = {}
        for gpu in self.fake.gpus:
            if gpu.active("gpu_lost", self.fake.now()):
                continue  # the device plugin marks it unhealthy
            for resource, device in self._devices(gpu):
                offered.setdefault(resource, []).append(device)
        devices = [
            api_pb2.ContainerDevices(resource_name=r, device_ids=d) for r, d in offered.items()
        ]
        return api_pb2.AllocatableResourcesResponse(devices=devices)

    def _devices(self, gpu: Any) -> list[tuple[str, str]]:
        if gpu.mig:
            return [(f"nvidia.com/mig-{mig.profile.name}", mig.uuid) for mig in gpu.mig]
        return [("nvidia.com/gpu", gpu.uuid)]

    def _pod(self, job: JobSpec) -> Any:
        held: dict[str, list[str]] = {}
        for index in job.gpus:
            gpu = self.fake.gpus[index]
            if job.mig is not None and job.mig < len(gpu.mig):
                mig = gpu.mig[job.mig]
                held.setdefault(f"nvidia.com/mig-{mig.profile.name}", []).append(mig.uuid)
            else:
                held.setdefault("nvidia.com/gpu", []).append(gpu.uuid)
        devices = [api_pb2.ContainerDevices(resource_name=r, device_ids=d) for r, d in held.items()]
        container = api_pb2.ContainerResources(name=job.comm, devices=devices)
        name = job.pod or job.id
        return api_pb2.PodResources(
            name=name, namespace=job.namespace or "default", containers=[container]
        )


class SimulatedKubelet:
    """A running simulated kubelet; `stop()` (idempotent) ends its gRPC server and its threads."""

    def __init__(self, server: grpc.Server, executor: futures.ThreadPoolExecutor) -> None:
        self.server = server
        self.executor = executor
        with _LOCK:
            _RUNNING.add(self)

    def stop(self) -> None:
        with _LOCK:
            if self not in _RUNNING:
                return
            _RUNNING.discard(self)
        self.server.stop(grace=None).wait(STOP_WAIT_S)
        self.executor.shutdown(wait=True, cancel_futures=True)


_RUNNING: set[SimulatedKubelet] = set()
_LOCK = threading.Lock()


def _stop_all() -> None:
    """Every kubelet still serving when the interpreter exits (after an unexpected error)."""
    with _LOCK:
        running = list(_RUNNING)
    for kubelet in running:
        kubelet.stop()


atexit.register(_stop_all)  # after `import grpc`: runs before anything grpc registers


def serve_kubelet(fake: FakeNvml, root: Path) -> SimulatedKubelet | None:
    """Start the simulated kubelet under `root`; None (logged) when the socket cannot be made."""
    kubelet = FakeKubelet(fake)
    for job in kubelet.jobs:
        namespace, name = job.namespace or "default", job.pod or job.id
        (root / "var/log/pods" / f"{namespace}_{name}_{job.pod_uid}").mkdir(
            parents=True, exist_ok=True
        )
    socket = root / SOCKET
    socket.parent.mkdir(parents=True, exist_ok=True)
    executor = futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="simulated-kubelet")
    server = grpc.server(executor)
    api_pb2_grpc.add_PodResourcesListerServicer_to_server(kubelet, server)  # type: ignore[no-untyped-call]
    try:
        server.add_insecure_port(f"unix://{socket}")
    except RuntimeError as err:  # a socket path over 107 bytes
        log.warning("simulated kubelet not started: %s", err)
        server.stop(grace=None)
        executor.shutdown(wait=False)
        return None
    server.start()
    return SimulatedKubelet(server, executor)
