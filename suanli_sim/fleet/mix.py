"""Which simulated node runs what: a role per node and multi-node training jobs, from a seed.

Roles come from a deck (`DECK`: how many of each in every 50 nodes). Each full block of the
deck's size is the whole deck, shuffled; a last, partial block (or a fleet smaller than the
deck) takes one node of each role first, in `PRIORITY` order, then the rest in proportion: so a
20-node fleet still holds a fault, a MIG node and an idle-but-allocated one. Consecutive
`train` nodes are grouped into Slurm jobs of 1 to 8 nodes, as a scheduler packs a large run
into neighbouring racks. Everything is a pure function of (seed, node count, deck).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Per 50 nodes. What each role runs: see scenarios.py.
DECK: dict[str, int] = {
    "train": 19,  # a Slurm job on all 8 GPUs, one of a multi-node run
    "train-k8s": 4,  # a Kubernetes training pod on all 8 GPUs
    "infer": 8,  # inference pods of 1-2 GPUs, some GPUs unallocated, pods coming and going
    "shared": 3,  # Slurm job, pod, container and an idle-but-allocated GPU on one node
    "idle": 3,  # nothing allocated
    "idle-alloc": 3,  # jobs holding GPUs and computing nothing
    "mig": 2,  # GPUs split into MIG instances, pods on them
    "l40s": 1,  # 4x L40S serving (no NVLink, no GPM)
    "rtx4090": 1,  # 8x GeForce RTX 4090 serving (fans, no ECC, no NVLink)
    "capped": 1,  # training under an administrative power cap
    "fault": 5,  # a fault bundle each (faults.py), cycling through the catalogue
}
PRIORITY = (
    "train",
    "fault",
    "infer",
    "mig",
    "idle-alloc",
    "idle",
    "shared",
    "train-k8s",
    "l40s",
    "capped",
    "rtx4090",
)
JOB_SIZES = (1, 2, 2, 4, 4, 4, 8, 8)  # nodes per multi-node training job
SLURM_USERS = (20821, 20822, 20823, 20830, 20841, 20857, 21002, 21010)


@dataclass(frozen=True)
class TrainJob:
    """A Slurm job spanning `nodes` consecutive nodes; `end`/`follow_up` make the GPUs churn."""

    id: str
    layout: str  # slurm-v2 or slurm-v1 (a cgroup v1 node set)
    user: int
    nodes: tuple[int, ...]
    end: float | None = None  # simulated seconds; None: runs for the whole simulation
    follow_up: str = ""  # the next job's id on the same nodes, starting after a gap
    follow_up_start: float = 0.0


def parse_mix(text: str) -> dict[str, int]:
    """`train=30,fault=10`: the deck with those counts changed. Raises ValueError."""
    deck = dict(DECK)
    for part in (p.strip() for p in text.split(",") if p.strip()):
        role, sep, count = part.partition("=")
        role = role.strip()
        if role not in DECK:
            raise ValueError(f'unknown role "{role}"; known: {", ".join(DECK)}')
        if not sep or not count.strip().isdigit():
            raise ValueError(f'"{part}": give ROLE=COUNT, a whole number of nodes per deck')
        deck[role] = int(count)
    if sum(deck.values()) == 0:
        raise ValueError("every role has count 0")
    return deck


def _priority_order(deck: Mapping[str, int]) -> list[str]:
    """One of each role (PRIORITY order), then the rest interleaved in proportion."""
    keyed: list[tuple[float, str]] = []
    for rank, role in enumerate(PRIORITY):
        count = deck.get(role, 0)
        for k in range(count):
            key = -1.0 + rank / 100 if k == 0 else k / count + rank / 1e4
            keyed.append((key, role))
    return [role for _, role in sorted(keyed)]


def assign_roles(nodes: int, seed: int, deck: Mapping[str, int] | None = None) -> list[str]:
    """The role of each of `nodes` nodes."""
    deck = deck or DECK
    rng = random.Random(f"roles:{seed}")
    ordered = _priority_order(deck)
    roles: list[str] = []
    while len(roles) < nodes:
        block = ordered[: nodes - len(roles)]
        rng.shuffle(block)
        roles.extend(block)
    return roles


def training_jobs(roles: Sequence[str], seed: int) -> dict[int, TrainJob]:
    """Node index -> its Slurm job, for every `train` node: the train nodes, in order, are cut
    into jobs of 1 to 8 nodes (neighbours in the fleet, as a scheduler packs a run into
    nearby racks)."""
    rng = random.Random(f"jobs:{seed}")
    train = [i for i, role in enumerate(roles) if role == "train"]
    jobs: dict[int, TrainJob] = {}
    next_id = 5_200_000 + rng.randrange(100_000)
    start = 0
    while start < len(train):
        size = min(len(train) - start, rng.choice(JOB_SIZES))
        job = _train_job(rng, str(next_id), tuple(train[start : start + size]))
        next_id += 2 + rng.randrange(40)  # + 1 is the follow-up's id
        jobs.update((node, job) for node in job.nodes)
        start += size
    return jobs


def _train_job(rng: random.Random, job_id: str, nodes: tuple[int, ...]) -> TrainJob:
    layout = "slurm-v1" if rng.random() < 0.1 else "slurm-v2"
    user = rng.choice(SLURM_USERS)
    if rng.random() >= 0.2:
        return TrainJob(job_id, layout, user, nodes)
    end = float(rng.randrange(600, 3600))
    follow_up = str(int(job_id) + 1)
    return TrainJob(job_id, layout, user, nodes, end, follow_up, end + rng.randrange(60, 240))
