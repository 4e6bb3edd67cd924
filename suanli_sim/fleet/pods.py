"""Kubernetes pods, idle allocations and MIG layouts of simulated nodes (scenario `jobs:`)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from suanli_sim.fleet.mix import TrainJob

Doc = dict[str, Any]
SERVICES = (  # (deployment, namespace)
    ("vllm-qwen2-72b", "llm-serving"),
    ("vllm-llama3-70b", "llm-serving"),
    ("sglang-deepseek-v2", "llm-serving"),
    ("tgi-mistral-7b", "chatbot"),
    ("triton-embed-bge", "search"),
    ("rerank-bge-large", "search"),
    ("whisper-large-v3", "speech"),
    ("dlrm-ranker", "recsys"),
)
TEAMS = ("nlp", "vision", "speech", "multimodal")
ALLOCATIONS = ((2, 2, 1, 1), (4, 2), (1, 1, 1, 1, 2), (2, 2, 2), (8,), (1, 1), (4,), (2, 1, 1, 1))
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # as Kubernetes' generated name suffixes


def suffix(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(length))


def training_pod(rng: random.Random, node: int) -> Doc:
    """A PyTorchJob worker holding all 8 GPUs."""
    team = rng.choice(TEAMS)
    name = f"{team}-pretrain-{node // 8:03d}-worker-{node % 8}"
    return {
        "id": name,
        "scheduler": "kubernetes",
        "namespace": f"research-{team}",
        "pod": name,
        "qos": "guaranteed",
        "gpus": list(range(8)),
        "user": 0,
        "comm": "pt_main_thread",
    }


def inference_pods(
    rng: random.Random, node: int, sizes: Sequence[int] | None = None, first_gpu: int = 0
) -> tuple[list[Doc], set[int]]:
    """Serving pods on consecutive GPUs from `first_gpu`, one may start late and one end early;
    returns the pods and the GPUs they hold."""
    sizes = sizes or rng.choice(ALLOCATIONS)
    layout = "kubernetes-v1" if rng.random() < 0.2 else "kubernetes"
    pods, gpu = [], first_gpu
    for k, size in enumerate(sizes):
        service, namespace = rng.choice(SERVICES)
        name = f"{service}-{suffix(rng, 5)}-{suffix(rng, 5)}"
        pod: Doc = {
            "id": name,
            "scheduler": layout,
            "namespace": namespace,
            "pod": name,
            "gpus": list(range(gpu, gpu + size)),
            "user": 0,
            "processes_per_gpu": rng.choice((1, 1, 2)),
        }
        if k == 0 and rng.random() < 0.3:
            pod["start"] = rng.randrange(30, 600)
        elif k == 1 and rng.random() < 0.3:
            pod["end"] = rng.randrange(600, 2400)
        pods.append(pod)
        gpu += size
    return pods, set(range(first_gpu, gpu))


def idle_alloc_jobs(rng: random.Random, job: TrainJob) -> tuple[str, list[Doc]]:
    """Allocated and idle: a Slurm job holding all 8 GPUs, or a notebook beside a training job."""
    if rng.random() < 0.5:
        held = {"id": job.id, "scheduler": "slurm-v2", "gpus": list(range(8)), "user": job.user}
        return f"Slurm job {job.id} holding all GPUs, computing nothing", [
            held | {"idle": True, "memory_mib": 30720}
        ]
    user = rng.choice(("alice", "bob", "chen", "dmitri", "li"))
    notebook = {
        "id": f"jupyter-{user}-0",
        "scheduler": "kubernetes",
        "namespace": "notebooks",
        "gpus": [6, 7],
        "user": 1000,
        "idle": True,
        "memory_mib": 20480,
        "comm": "jupyter-lab",
    }
    train = {"id": job.id, "scheduler": "slurm-v2", "gpus": list(range(6)), "user": job.user}
    return f"Slurm job {job.id} on GPUs 0-5, an idle notebook holding 6-7", [train, notebook]


def mig_node(rng: random.Random, slurm_id: str) -> tuple[str, list[Doc], list[Doc]]:
    """(description, gpus, jobs) of a node with half its GPUs in MIG mode."""
    if rng.random() < 0.3:
        return _a100_mig(slurm_id)
    idle3g = {"profile": "3g.40gb", "workload": "idle"}
    spare = [{"profile": "1g.10gb", "workload": "idle"}] * 3
    gpus: list[Doc] = [
        {"model": "H100-SXM5-80GB", "workload": "inference"}
        | {"mig": ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]},
        {"model": "H100-SXM5-80GB", "workload": "training", "mig": ["7g.80gb"]},
        {"model": "H100-SXM5-80GB", "workload": "inference", "mig": ["1g.10gb"] * 4 + spare},
        {"model": "H100-SXM5-80GB", "workload": "training", "mig": ["4g.40gb", idle3g]},
        {"model": "H100-SXM5-80GB", "count": 4, "workload": "training"},
    ]
    jobs = [_mig_pod(rng, 0, m) for m in (0, 1, 2, 3)] + [_mig_pod(rng, 2, m) for m in range(4)]
    jobs += [
        {"id": slurm_id, "scheduler": "slurm-v2", "gpus": [1], "mig": 0, "user": 20821},
        {"id": str(int(slurm_id) + 1), "scheduler": "slurm-v2", "gpus": [3], "mig": 0},
        {"id": str(int(slurm_id) + 2), "scheduler": "slurm-v2", "gpus": [4, 5, 6, 7]},
    ]
    return "8x H100, GPUs 0-3 in MIG mode (15 instances), pods and Slurm jobs on them", gpus, jobs


def _mig_pod(rng: random.Random, gpu: int, mig: int) -> Doc:
    service, namespace = rng.choice(SERVICES)
    name = f"{service}-{suffix(rng, 5)}-{suffix(rng, 5)}"
    return {
        "id": name,
        "scheduler": "kubernetes",
        "namespace": namespace,
        "pod": name,
        "gpus": [gpu],
        "mig": mig,
        "user": 0,
    }


def _a100_mig(slurm_id: str) -> tuple[str, list[Doc], list[Doc]]:
    gpus: list[Doc] = [
        {"model": "A100-SXM4-80GB", "workload": "inference"}
        | {"mig": ["1g.20gb", "1g.20gb", {"profile": "1g.20gb", "workload": "idle"}]},
        {"model": "A100-SXM4-80GB", "workload": "inference", "mig": ["3g.40gb", "3g.40gb"]},
        {"model": "A100-SXM4-80GB", "count": 6, "workload": "training"},
    ]
    jobs: list[Doc] = [
        {"id": "sd-xl-infer", "scheduler": "kubernetes", "namespace": "imaging"}
        | {"gpus": [1], "mig": 0, "user": 0},
        {"id": "sd-xl-batch", "scheduler": "kubernetes", "namespace": "imaging"}
        | {"gpus": [1], "mig": 1, "user": 0},
        {"id": "ocr-small", "scheduler": "kubernetes", "namespace": "search"}
        | {"gpus": [0], "mig": 0, "user": 0},
        {"id": "ocr-small-2", "scheduler": "kubernetes", "namespace": "search"}
        | {"gpus": [0], "mig": 1, "user": 0},
        {"id": slurm_id, "scheduler": "slurm-v1", "gpus": [2, 3, 4, 5, 6, 7], "user": 1000},
    ]
    return "8x A100, GPUs 0-1 in MIG mode, pods on the instances, a Slurm job", gpus, jobs
