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

grpc is imported only when a socket is there to be read. Every failure is a `KubeletError` with
a short reason for the status metric; nothing here logs.
"""

from __future__ import annotations

import atexit
import os
import stat
import threading
import weakref
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.hw.cgroups import JobRef

KUBELET_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
_MAX_MESSAGE = 16 * 1024 * 1024  # dcgm-exporter's limit for a List answer
_UID_LEN = 36


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
    """One channel to the kubelet, made again after any failure (so a restarted kubelet is found
    at the next call, not after gRPC's reconnect backoff). `close()` is final: a call in flight
    is cancelled and no channel is made after it, even by a thread still reading; a client
    still open when the interpreter exits is closed then, before Python tears down (a gRPC
    channel left open past that can abort the process)."""

    def __init__(self, socket_path: str = KUBELET_SOCKET, timeout_s: float = 1.0) -> None:
        self.socket_path = socket_path
        self.timeout_s = timeout_s
        self._channel: Any = None
        self._stub: Any = None
        self._lock = threading.Lock()
        self._closed = False

    def read(self, pod_uids: dict[tuple[str, str], str] | None = None) -> KubeletAnswer:
        """The pods' GPUs now. Raises `KubeletError`; takes at most two deadlines."""
        try:
            self._check_socket()
            stub, pb2 = self._connect()
            listed = self._call(stub.List, pb2.ListPodResourcesRequest())
            try:
                allocatable: Any = self._call(
                    stub.GetAllocatableResources, pb2.AllocatableResourcesRequest()
                )
            except KubeletError as err:
                if err.reason in ("refused", "timeout"):
                    raise
                allocatable = None  # before 1.23, or its feature gate off: List still counts
            return KubeletAnswer(holders(listed.pod_resources, pod_uids or {}), ids(allocatable))
        except KubeletError:
            self._drop_channel()
            raise

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

    def _connect(self) -> tuple[Any, Any]:
        try:
            import grpc

            from agent.hw.podresources_v1 import api_pb2, api_pb2_grpc
        except Exception as err:  # not installed, or grpcio/protobuf older than the generated code
            raise KubeletError("no_grpc", f"{type(err).__name__}: {err}") from None
        with self._lock:
            if self._closed:
                raise KubeletError("closed", "the agent is stopping")
            if self._stub is None:
                options = [("grpc.max_receive_message_length", _MAX_MESSAGE)]
                self._channel = grpc.insecure_channel(f"unix://{self.socket_path}", options=options)
                self._stub = api_pb2_grpc.PodResourcesListerStub(self._channel)  # type: ignore[no-untyped-call]
                _close_at_exit(self)
            return self._stub, api_pb2

    def _call(self, method: Any, request: Any) -> Any:
        import grpc

        try:
            return method(request, timeout=self.timeout_s)
        except grpc.RpcError as err:
            code = err.code() if callable(getattr(err, "code", None)) else None
            name = getattr(code, "name", "UNKNOWN")
            raise KubeletError(_REASONS.get(name, "bad_answer"), name) from None
        except Exception as err:  # an answer that does not decode
            raise KubeletError("bad_answer", type(err).__name__) from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._drop_channel()

    def _drop_channel(self) -> None:
        with self._lock:
            channel, self._channel, self._stub = self._channel, None, None
            _OPEN.discard(self)
        if channel is not None:
            channel.close()


_OPEN: weakref.WeakSet[PodResourcesClient] = weakref.WeakSet()  # clients with a channel
_EXIT_HOOK: list[bool] = []


def _close_at_exit(client: PodResourcesClient) -> None:
    """Remember an open client; at exit, close every one still open. The hook is registered
    after grpc is imported, so it runs before anything grpc registers."""
    _OPEN.add(client)
    if not _EXIT_HOOK:
        _EXIT_HOOK.append(True)
        atexit.register(_close_all)


def _close_all() -> None:
    for client in list(_OPEN):
        client.close()


def holders(
    pods: Iterable[Any], pod_uids: dict[tuple[str, str], str]
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


def ids(allocatable: Any) -> frozenset[str] | None:
    """The GPU device ids of a `GetAllocatableResources` answer."""
    if allocatable is None:
        return None
    return frozenset(
        _physical(device_id)
        for device in allocatable.devices
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
