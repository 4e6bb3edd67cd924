"""A simulated node's scenario: its role (mix.py) turned into a fake NVML scenario document.

Documents have the shape of `suanli_sim/scenarios/*.yaml` (docs/scenarios.md) and go through
the same strict parser, so `--dump-scenarios DIR` writes files that `suanli-agent --fake FILE`
runs as a single node. GPUs that no job names idle (the fake runs a GPU's workload all the
time when no job names it); allocated GPUs run their job's workload while the job is active.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from suanli_sim.fake_scenario import Scenario
from suanli_sim.fake_scenario import _scenario as scenario_from_document
from suanli_sim.fleet.faults import application_xids, fault_bundle
from suanli_sim.fleet.mix import TrainJob
from suanli_sim.fleet.pods import idle_alloc_jobs, inference_pods, mig_node, training_pod
from suanli_sim.fleet.topology import Placement

Doc = dict[str, Any]
DRIVERS = (
    ("535.230.02", 12020),
    ("550.144.03", 12040),
    ("565.57.01", 12070),
    ("570.133.20", 12080),
    ("590.48.01", 13010),
)
TRAIN_MODELS = ("H100-SXM5-80GB",) * 5 + ("H800-SXM5-80GB",) * 3 + ("H200-SXM-141GB",) * 2
INFER_MODELS = ("H20-96GB",) * 6 + ("H100-SXM5-80GB",) * 2 + ("H200-SXM-141GB",) * 2
POWER_CAP_W = 450


@dataclass(frozen=True)
class NodePlan:
    """Everything one simulated node is: where it sits, what it runs, and its scenario."""

    placement: Placement
    role: str
    document: Doc
    scenario: Scenario

    @property
    def gpus(self) -> int:
        return len(self.scenario.gpus)

    @property
    def mig_gpus(self) -> int:
        return sum(1 for gpu in self.scenario.gpus if gpu.mig)


@dataclass
class Context:
    """What a role's builder gets: the node, its random stream, its job, its fault number."""

    placement: Placement
    rng: random.Random
    job: TrainJob | None = None
    fault_number: int = 0


# HGX nodes carry one NDR compute rail per GPU (lspci-vvv__gpud-hgx-h100.txt: 8x ConnectX-7);
# the PCIe inference boxes and MIG nodes here serve over Ethernet.
IB_RAILS = 8
HGX_ROLES = frozenset({"train", "train-k8s", "capped", "fault", "shared", "idle", "idle-alloc"})


def plural(count: int, noun: str, ending: str = "s") -> str:
    return f"{count} {noun}{'' if count == 1 else ending}"


def eight(model: str, workload: str, **extra: Any) -> Doc:
    gpu: Doc = {"model": model, "count": 8, "workload": workload, **extra}
    if model == "H800-SXM5-80GB":
        gpu["ecc"] = True  # captured with ECC off (an operator's choice); centers run it on
    return gpu


def slurm(job: TrainJob) -> list[Doc]:
    first: Doc = {"id": job.id, "scheduler": job.layout, "gpus": list(range(8)), "user": job.user}
    first["comm"] = "pt_main_thread"
    if job.end is None:
        return [first]
    second = {**first, "id": job.follow_up, "start": job.follow_up_start}
    return [{**first, "end": job.end}, second]


def _train(ctx: Context) -> tuple[str, Doc]:
    assert ctx.job is not None
    model = random.Random(f"model:{ctx.job.id}").choice(TRAIN_MODELS)  # one type per job
    faults = application_xids(ctx.rng) if ctx.rng.random() < 0.15 else []
    size = len(ctx.job.nodes)
    churn = f", then job {ctx.job.follow_up}" if ctx.job.end is not None else ""
    what = f"8x {model} in Slurm job {ctx.job.id} ({plural(size, 'node')}){churn}"
    return what, {"gpus": [eight(model, "training")], "jobs": slurm(ctx.job), "faults": faults}


def _single_job(ctx: Context) -> TrainJob:
    job_id = str(6_100_000 + ctx.placement.index * 7 + ctx.rng.randrange(7))
    return TrainJob(job_id, "slurm-v2", ctx.rng.choice((20821, 20822, 20841)), (0,))


def _train_k8s(ctx: Context) -> tuple[str, Doc]:
    model = ctx.rng.choice(TRAIN_MODELS)
    pod = training_pod(ctx.rng, ctx.placement.index)
    what = f"8x {model}, training pod {pod['namespace']}/{pod['pod']}"
    return what, {"gpus": [eight(model, "training")], "jobs": [pod]}


def _infer(ctx: Context) -> tuple[str, Doc]:
    model = ctx.rng.choice(INFER_MODELS)
    pods, allocated = inference_pods(ctx.rng, ctx.placement.index)
    gpus = [
        {"model": model, "workload": "inference" if i in allocated else "idle"} for i in range(8)
    ]
    what = f"8x {model} serving {plural(len(pods), 'pod')} on {plural(len(allocated), 'GPU')}"
    return what, {"gpus": gpus, "jobs": pods}


def _shared(ctx: Context) -> tuple[str, Doc]:
    model = ctx.rng.choice(TRAIN_MODELS[:8])
    job = _single_job(ctx)
    pods, _ = inference_pods(ctx.rng, ctx.placement.index, sizes=(2,), first_gpu=4)
    jobs = [
        {"id": job.id, "scheduler": "slurm-v2", "gpus": [0, 1, 2, 3], "user": job.user},
        *pods,
        {"id": f"finetune-{ctx.placement.index}", "scheduler": "docker", "gpus": [6], "user": 0},
        {"id": str(int(job.id) + 3), "scheduler": "slurm-v2", "gpus": [7], "idle": True}
        | {"memory_mib": 18432, "user": 1000},
    ]
    gpus = [eight(model, "training")]
    # an old driver's fallback that kills the process calling it: the agent's probe meets it
    # (the node's detail families need calls never seen on real hardware) and turns it off
    crash = {"kind": "segfault", "functions": ["nvmlDeviceGetCurrentClocksThrottleReasons"]}
    what = f"8x {model} shared by a Slurm job, a pod, a container and an idle job"
    return f"{what}; an NVML call that crashes its caller", {
        "gpus": gpus,
        "jobs": jobs,
        "faults": [crash],
    }


def _idle(ctx: Context) -> tuple[str, Doc]:
    model = ctx.rng.choice(TRAIN_MODELS + INFER_MODELS)
    return f"8x {model}, nothing allocated", {"gpus": [eight(model, "idle")]}


def _idle_alloc(ctx: Context) -> tuple[str, Doc]:
    model = ctx.rng.choice(TRAIN_MODELS)
    what, jobs = idle_alloc_jobs(ctx.rng, _single_job(ctx))
    return f"8x {model}, {what}", {"gpus": [eight(model, "training")], "jobs": jobs}


def _mig(ctx: Context) -> tuple[str, Doc]:
    what, gpus, jobs = mig_node(ctx.rng, _single_job(ctx).id)
    # MIG nodes run a kubelet (fake_kubelet): the pods' MIG devices as the device plugin has them
    return what, {"gpus": gpus, "jobs": jobs, "kubelet": True}


def _l40s(ctx: Context) -> tuple[str, Doc]:
    pods, _ = inference_pods(ctx.rng, ctx.placement.index, sizes=(1, 1))
    gpus = [
        {"model": "L40S", "count": 2, "workload": "inference"},
        {"model": "L40S", "workload": "memory-bound"},
        {"model": "L40S", "workload": "idle"},
    ]
    render = {"id": f"render-{ctx.placement.index}", "scheduler": "docker", "gpus": [2]}
    return "4x L40S: two pods, a container, one idle GPU", {
        "gpus": gpus,
        "jobs": [*pods, render | {"user": 0}],
        "driver": ("550.127.05", 12040),
    }


def _rtx4090(ctx: Context) -> tuple[str, Doc]:
    pods, allocated = inference_pods(ctx.rng, ctx.placement.index, sizes=(1, 1, 1, 1, 2))
    gpus = [
        {"model": "RTX-4090", "workload": "inference" if i in allocated else "idle"}
        for i in range(8)
    ]
    return f"8x RTX 4090 serving {plural(len(pods), 'pod')}", {
        "gpus": gpus,
        "jobs": pods,
        "driver": ("550.144.03", 12040),
    }


def _capped(ctx: Context) -> tuple[str, Doc]:
    job = _single_job(ctx)
    gpus = [eight("H100-SXM5-80GB", "training", power_limit_w=POWER_CAP_W)]
    return f"8x H100 training under a {POWER_CAP_W} W power cap, Slurm job {job.id}", {
        "gpus": gpus,
        "jobs": slurm(job),
    }


def _fault(ctx: Context) -> tuple[str, Doc]:
    model = ctx.rng.choice(TRAIN_MODELS)
    job = _single_job(ctx)
    what, faults = fault_bundle(ctx.fault_number, ctx.rng, 8)
    # a rail unplugged and one on a bad cable, by the fault's number (the rng stays the mix's)
    down, flaky = ctx.fault_number % IB_RAILS, (ctx.fault_number + 3) % IB_RAILS
    return f"8x {model} in Slurm job {job.id}; {what}; IB rail {down} down, {flaky} flapping", {
        "gpus": [eight(model, "training")],
        "jobs": slurm(job),
        "faults": faults,
        "infiniband": {"ports": IB_RAILS, "down": [down], "flaky": [flaky]},
    }


BUILDERS: dict[str, Callable[[Context], tuple[str, Doc]]] = {
    "train": _train,
    "train-k8s": _train_k8s,
    "infer": _infer,
    "shared": _shared,
    "idle": _idle,
    "idle-alloc": _idle_alloc,
    "mig": _mig,
    "l40s": _l40s,
    "capped": _capped,
    "rtx4090": _rtx4090,
    "fault": _fault,
}


def node_plan(placement: Placement, role: str, seed: int, ctx: Context) -> NodePlan:
    """The node's scenario document, parsed (raises ScenarioError on a builder's mistake)."""
    what, body = BUILDERS[role](ctx)
    driver, cuda = body.pop("driver", None) or ctx.rng.choice(DRIVERS)
    document: Doc = {
        "name": placement.hostname,
        "description": f"{role}: {what}",
        "seed": (seed * 1_000_003 + placement.index) % 2**31,
        "driver_version": driver,
        "cuda_driver_version": cuda,
        "gpus": body["gpus"],
        "jobs": body.get("jobs", []),
        "faults": body.get("faults", []),
        "infiniband": body.get("infiniband", {"ports": IB_RAILS if role in HGX_ROLES else 0}),
    }
    if body.get("kubelet"):
        document["kubelet"] = True
    return NodePlan(placement, role, document, scenario_from_document(document))
