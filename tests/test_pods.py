"""Kubernetes names of a container, read from the container runtime's own files."""

from __future__ import annotations

import json
from pathlib import Path

from agent.hw.pods import PodNameResolver, PodNames

CID = "25d057a4c6c9555f2a0eb106e8896968c28f1c44aca4754174851aca7f89ad26"


def write(root: Path, relative: str, document: object) -> None:
    path = root / relative
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(document))


def test_containerd_bundle_annotations_give_the_names(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"run/containerd/io.containerd.runtime.v2.task/k8s.io/{CID}/config.json",
        {
            "ociVersion": "1.1.0",
            "annotations": {
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.sandbox-namespace": "llm-serving",
                "io.kubernetes.cri.sandbox-name": "qwen-72b-infer-7d9f8",
                "io.kubernetes.cri.container-name": "vllm",
            },
        },
    )
    names = PodNameResolver(str(tmp_path)).lookup(CID)
    assert names == PodNames("llm-serving", "qwen-72b-infer-7d9f8", "vllm")


def test_crio_and_docker_labels_are_read_too(tmp_path: Path) -> None:
    crio, docker = "a" * 64, "b" * 64
    labels = {
        "io.kubernetes.pod.namespace": "train",
        "io.kubernetes.pod.name": "llama-sft-0",
        "io.kubernetes.container.name": "trainer",
    }
    write(
        tmp_path,
        f"run/containers/storage/overlay-containers/{crio}/userdata/config.json",
        {"annotations": labels},
    )
    write(
        tmp_path,
        f"var/lib/docker/containers/{docker}/config.v2.json",
        {"Config": {"Labels": labels}},
    )
    resolver = PodNameResolver(str(tmp_path))
    assert (
        resolver.lookup(crio)
        == resolver.lookup(docker)
        == PodNames("train", "llama-sft-0", "trainer")
    )


def test_an_unknown_or_odd_container_has_no_names_and_is_not_reread_at_once(tmp_path: Path) -> None:
    now = [0.0]
    resolver = PodNameResolver(str(tmp_path), clock=lambda: now[0])
    assert resolver.lookup(CID) is None
    assert resolver.lookup("../../etc/passwd") is None
    write(
        tmp_path,
        f"var/lib/docker/containers/{CID}/config.v2.json",
        {"Config": {"Labels": {"io.kubernetes.pod.namespace": "a", "io.kubernetes.pod.name": "b"}}},
    )
    assert resolver.lookup(CID) is None, "a miss is remembered for a minute"
    now[0] = 61.0
    assert resolver.lookup(CID) == PodNames("a", "b", "")
