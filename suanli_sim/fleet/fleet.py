"""The fleet plan: every node's placement, role and scenario, from the seed alone."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from suanli_sim.fleet.mix import assign_roles, training_jobs
from suanli_sim.fleet.scenarios import Context, NodePlan, node_plan
from suanli_sim.fleet.topology import Layout, place


def plan_fleet(
    nodes: int,
    seed: int,
    fleet: Layout,
    base_port: int,
    deck: Mapping[str, int] | None = None,
) -> list[NodePlan]:
    """Every node's plan. Deterministic: the same arguments give the same fleet."""
    roles = assign_roles(nodes, seed, deck)
    jobs = training_jobs(roles, seed)
    plans, faults = [], 0
    for placement, role in zip(place(nodes, fleet, base_port), roles, strict=True):
        rng = random.Random(f"node:{seed}:{placement.index}")
        ctx = Context(placement, rng, jobs.get(placement.index), faults)
        faults += role == "fault"
        plans.append(node_plan(placement, role, seed, ctx))
    return plans


def summary(plans: Sequence[NodePlan]) -> str:
    """`1000 nodes, 7968 GPUs (16 in MIG mode); roles: train 400, ...`"""
    gpus = sum(p.gpus for p in plans)
    mig = sum(p.mig_gpus for p in plans)
    roles = Counter(p.role for p in plans)
    listed = ", ".join(f"{role} {count}" for role, count in roles.most_common())
    return f"{len(plans)} nodes, {gpus} GPUs ({mig} in MIG mode); roles: {listed}"


def dump_scenarios(plans: Sequence[NodePlan], folder: Path) -> None:
    """Each node's scenario as `<hostname>.yaml`, runnable with `suanli-agent --fake FILE`."""
    folder.mkdir(parents=True, exist_ok=True)
    for plan in plans:
        text = yaml.safe_dump(plan.document, sort_keys=False, width=100)
        (folder / f"{plan.placement.hostname}.yaml").write_text(text, encoding="utf-8")
