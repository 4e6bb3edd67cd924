"""Which pod holds which GPU, from the kubelet's PodResources API (v1), as dcgm-exporter reads it.

The kubelet serves `v1.PodResourcesLister` over gRPC on a unix socket
(`/var/lib/kubelet/pod-resources/kubelet.sock`). `List` names, for every container of every pod
on the node, the devices the device plugins gave it; `GetAllocatableResources` names the devices
the kubelet can give at all (the device plugins' healthy devices). NVIDIA's device plugin reports
a whole GPU under `nvidia.com/gpu` by its UUID (`GPU-...`), a MIG instance under
`nvidia.com/gpu` or `nvidia.com/mig-<profile>` by its MIG UUID (`MIG-...`); with
`--device-id-strategy=index` the ids are NVML indices (`0`, `1`, ...) instead, and a GPU shared
by time-slicing or MPS is handed out as replicas `<id>::<n>`, each the GPU `<id>`.

A pod's job id is its UID, as the cgroup path of its processes gives it (`agent.hw.cgroups`).
The API gives namespace and name only; the kubelet's log directory
`/var/log/pods/<namespace>_<name>_<uid>` (under the host root) gives the UID. A pod found there
is `JobRef("kubernetes", <uid>)`; one that is not is `JobRef("kubernetes", "<namespace>/<name>")`.

The calls go through the standard library alone (`agent.hw.grpc_unary`, HTTP/2 and HPACK by
hand; `agent.hw.podresources_wire`, protobuf's wire format by hand): grpcio and protobuf would
add about 18 MiB to the agent's resident memory on every Kubernetes node. Each call has its
own connection and one deadline (`timeout_s`), connecting included. Every failure is a
`KubeletError` with a short reason for the status metric; nothing here logs.
"""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from agent.hw.cgroups import JobRef
from agent.hw.grpc_response import RpcError
from agent.hw.grpc_unary import MAX_MESSAGE, UnaryClient
from agent.hw.podresources_wire import (
    ContainerDevices,
    PodResources,
    WireError,
    allocatable_response,
    list_response,
)

KUBELET_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
_MAX_MESSAGE = MAX_MESSAGE  # 16 MiB: dcgm-exporter's limit for a List answer
_LIST = "/v1.PodResourcesLister/List"
_ALLOCATABLE = "/v1.PodResourcesLister/GetAllocatableResources"
_UID_LEN = 36
T = TypeVar("T")


def is_gpu_resource(name: str) -> bool:
    return name == GPU_RESOURCE or name.startswith(MIG_RESOURCE_PREFIX)


class KubeletError(Exception):
    """The kubelet could not be read; `reason` is one short word for the status metric."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class KubeletAnswer:
    """GPU device id -> the pods' containers holding it; the ids the kubelet can allocate."""

    holders: dict[str, tuple[JobRef, ...]]
    allocatable: frozenset[str] | None  # None: the kubelet does not implement the call


# gRPC status code names -> reason; anything else is a bad answer
_REASONS = {
    "UNAVAILABLE": "refused",
    "DEADLINE_EXCEEDED": "timeout",
    "UNIMPLEMENTED": "unimplemented",
    "PERMISSION_DENIED": "permission",
    "UNAUTHENTICATED": "permission",
}


class PodResourcesClient:
    """Calls to the kubelet, each on a connection of its own (a restarted kubelet is found at the
    next call)."""

    def __init__(self, socket_path: str = KUBELET_SOCKET, timeout_s: float = 1.0) -> None:
        self.socket_path = socket_path
        self.timeout_s = timeout_s
        self._client = UnaryClient(socket_path, _MAX_MESSAGE)
        self._closed = False

    def read(self, pod_uids: dict[tuple[str, str], str] | None = None) -> KubeletAnswer:
        """The pods' GPUs now. Raises `KubeletError`; takes at most two deadlines."""
        self._check_socket()
        pods = self._call(_LIST, list_response)
        try:
            devices = self._call(_ALLOCATABLE, allocatable_response)
        except KubeletError as err:
            if err.reason in ("refused", "timeout"):
                raise
            devices = None  # before 1.23, or its feature gate off: List still counts
        return KubeletAnswer(holders(pods, pod_uids or {}), ids(devices))

    def _check_socket(self) -> None:
        try:
            mode = os.stat(self.socket_path).st_mode
        except FileNotFoundError:
            raise KubeletError("missing", self.socket_path) from None
        except OSError as err:
            raise KubeletError("permission", str(err)) from None
        if not stat.S_ISSOCK(mode):
            raise KubeletError("missing", f"{self.socket_path} is not a socket")
        if not os.access(self.socket_path, os.R_OK | os.W_OK):
            raise KubeletError("permission", f"cannot connect to {self.socket_path}")

    def _call(self, method: str, decode: Callable[[bytes], T]) -> T:
        """The answer of `method` to an empty request, decoded."""
        try:
            return decode(self._client.call(method, b"", self.timeout_s))
        except RpcError as err:
            # "closed": the agent is stopping; the reason is never exported
            reason = "closed" if self._closed else _REASONS.get(err.status, "bad_answer")
            raise KubeletError(reason, str(err)) from None
        except WireError as err:
            raise KubeletError("bad_answer", str(err)) from None

    def close(self) -> None:
        """End a call in flight (another thread's) at once; later reads fail as `closed`."""
        self._closed = True
        self._client.close()


def holders(
    pods: Iterable[PodResources], pod_uids: dict[tuple[str, str], str]
) -> dict[str, tuple[JobRef, ...]]:
    """GPU device id -> one JobRef per container holding it (a `List` answer's pods)."""
    found: defaultdict[str, list[JobRef]] = defaultdict(list)
    for pod in pods:
        namespace, name = str(pod.namespace), str(pod.name)
        if not namespace or not name:
            continue
        job = pod_uids.get((namespace, name)) or f"{namespace}/{name}"
        for container in pod.containers:
            ref = JobRef("kubernetes", job, "", namespace, name, str(container.name))
            for device in container.devices:
                if is_gpu_resource(device.resource_name):
                    for device_id in map(_physical, device.device_ids):
                        if ref not in found[device_id]:
                            found[device_id].append(ref)
    return {device_id: tuple(refs) for device_id, refs in found.items()}


def ids(allocatable: Iterable[ContainerDevices] | None) -> frozenset[str] | None:
    """The GPU device ids of a `GetAllocatableResources` answer's devices."""
    if allocatable is None:
        return None
    return frozenset(
        _physical(device_id)
        for device in allocatable
        if is_gpu_resource(device.resource_name)
        for device_id in device.device_ids
    )


def _physical(device_id: str) -> str:
    """The device of a shared replica (`GPU-...::3`: time-slicing or MPS), or the id itself."""
    return str(device_id).split("::", 1)[0]


def pod_uids(log_root: str) -> dict[tuple[str, str], str]:
    """(namespace, pod) -> UID from the kubelet's `<namespace>_<name>_<uid>` log directories.

    Namespaces and pod names are DNS names, without `_`, so the split is exact. {} when the
    directory cannot be listed.
    """
    try:
        names = os.listdir(log_root)
    except OSError:
        return {}
    found: dict[tuple[str, str], str] = {}
    for entry in names:
        parts = entry.split("_")
        if len(parts) == 3 and all(parts) and len(parts[2]) == _UID_LEN:
            found[(parts[0], parts[1])] = parts[2]
    return found
