"""Kubernetes names (namespace, pod, container) of a container id, from the runtime's own files.

A cgroup path gives a pod's UID and a container id, not names. The container runtimes write the
names next to each container as annotations or labels, in files root can read: containerd's
OCI bundle, CRI-O's userdata, Docker's container config. Reading them needs no API server, no
gRPC client and no network; a container none of them knows keeps its id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (path under the host root, where the names are in the JSON, the three keys)
_SOURCES = (
    (
        "run/containerd/io.containerd.runtime.v2.task/k8s.io/{cid}/config.json",
        ("annotations",),
        (
            "io.kubernetes.cri.sandbox-namespace",
            "io.kubernetes.cri.sandbox-name",
            "io.kubernetes.cri.container-name",
        ),
    ),
    (
        "run/containers/storage/overlay-containers/{cid}/userdata/config.json",
        ("annotations",),
        ("io.kubernetes.pod.namespace", "io.kubernetes.pod.name", "io.kubernetes.container.name"),
    ),
    (
        "var/lib/docker/containers/{cid}/config.v2.json",
        ("Config", "Labels"),
        ("io.kubernetes.pod.namespace", "io.kubernetes.pod.name", "io.kubernetes.container.name"),
    ),
)
_MAX_BYTES = 1 << 20
MISS_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class PodNames:
    namespace: str
    pod: str
    container: str


class PodNameResolver:
    """Looks names up once per container (a miss is retried after a minute)."""

    def __init__(self, host_root: str = "/", clock: Callable[[], float] = time.monotonic) -> None:
        self.root = Path(host_root)
        self._clock = clock
        self._found: dict[str, PodNames] = {}
        self._missed: dict[str, float] = {}

    def lookup(self, container_id: str) -> PodNames | None:
        if not container_id or not container_id.isalnum():
            return None
        if container_id in self._found:
            return self._found[container_id]
        missed = self._missed.get(container_id)
        if missed is not None and self._clock() - missed < MISS_TTL_SECONDS:
            return None
        names = self._read(container_id)
        if names is None:
            self._missed[container_id] = self._clock()
        else:
            self._found[container_id] = names
            self._missed.pop(container_id, None)
        return names

    def forget(self, keep: set[str]) -> None:
        """Drop what is cached for containers no longer seen (bounded memory)."""
        for cache in (self._found, self._missed):
            for cid in [c for c in cache if c not in keep]:
                del cache[cid]

    def _read(self, container_id: str) -> PodNames | None:
        for pattern, where, keys in _SOURCES:
            path = self.root / pattern.format(cid=container_id)
            labels = _nested(_load(path), where)
            values = [labels.get(key) for key in keys]
            if all(isinstance(v, str) and v for v in values[:2]):
                return PodNames(str(values[0]), str(values[1]), str(values[2] or ""))
        return None


def _load(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            return json.loads(handle.read(_MAX_BYTES))
    except (OSError, ValueError):
        return None


def _nested(document: Any, where: tuple[str, ...]) -> dict[str, Any]:
    for key in where:
        if not isinstance(document, dict):
            return {}
        document = document.get(key)
    return document if isinstance(document, dict) else {}
