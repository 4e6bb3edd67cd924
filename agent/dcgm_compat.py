"""dcgm-exporter-compatible series derived from a snapshot's native samples (opt-in).

`DcgmCompat.samples(native)` reads only samples the collectors already produced: no NVML call,
no state between snapshots. The renderer calls it once per snapshot and renders its output
beside the native families. The mapping itself is data: agent/dcgm_table.py.
"""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from agent.dcgm_table import SPECS, TABLE, DcgmMetric, Source
from agent.metrics import MetricSpec, Sample

GPU_INFO, MIG_INFO = "suanli_gpu_info", "suanli_mig_info"
JOB_INFO, NODE_INFO = "suanli_gpu_job_info", "suanli_node_info"
_CONTEXT = (GPU_INFO, MIG_INFO, JOB_INFO, NODE_INFO)
_USED = frozenset({s.family for m in TABLE for s in (*m.sources, *m.mig)} | set(_CONTEXT))

NO_POD = ("", "", "")
Labels = dict[str, str]
# (family, GPU uuid, GPU instance or "") -> the samples' labels and values
Index = dict[tuple[str, str, str], list[tuple[Labels, float]]]


@dataclass
class _Node:
    """What the compat series need to know about the node, read off the native samples."""

    index: Index = field(default_factory=lambda: defaultdict(list))
    gpus: dict[str, tuple[str, ...]] = field(default_factory=dict)  # uuid -> GPU labels
    instances: dict[str, dict[str, str]] = field(default_factory=dict)  # uuid -> {GI: profile}
    pods: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # uuid -> pod labels
    hostname: str = ""


def _index(samples: Iterable[Sample]) -> _Node:
    node = _Node()
    for sample in samples:
        name = sample.spec.name
        if name not in _USED:
            continue
        labels = dict(zip(sample.spec.labels, sample.labels, strict=True))
        uuid, instance = labels.get("uuid", ""), labels.get("gpu_instance", "")
        node.index[(name, uuid, instance)].append((labels, sample.value))
    for labels, _ in node.index.get((NODE_INFO, "", ""), []):
        node.hostname = labels.get("hostname", "")
    return node


def _context(node: _Node, fallback_hostname: str) -> None:
    """GPU identity labels, MIG instances and pods, from the info series."""
    hostname = node.hostname or fallback_hostname
    for (family, uuid, instance), rows in sorted(node.index.items()):
        for labels, _ in rows:
            if family == GPU_INFO:
                gpu = labels["gpu"]
                node.gpus[uuid] = (
                    gpu,
                    uuid,
                    labels.get("pci_bus_id", ""),
                    f"nvidia{gpu}",
                    labels.get("model", ""),
                    hostname,
                    labels.get("driver_version", ""),
                )
            elif family == MIG_INFO:
                node.instances.setdefault(uuid, {}).setdefault(instance, labels["profile"])
            elif family == JOB_INFO and labels.get("scheduler") == "kubernetes":
                pod = (labels.get("container", ""), labels.get("namespace", ""), labels["pod"])
                if pod[2] and (uuid not in node.pods or pod[1:] < node.pods[uuid][1:]):
                    node.pods[uuid] = pod  # several pods on one GPU: the first by name


def _value(node: _Node, sources: tuple[Source, ...], uuid: str, instance: str = "") -> float | None:
    total = 0.0
    for source in sources:
        rows = node.index.get((source.family, uuid, instance), [])
        found = [v for labels, v in rows if all(labels.get(k) == x for k, x in source.match)]
        if not found and not source.optional:
            return None
        total += source.coefficient * (found[0] if found else 0.0)  # one per GPU or instance
    return total


def _max_xid(node: _Node, source: Source, uuid: str) -> float:
    rows = node.index.get((source.family, uuid, ""), [])
    codes = [int(labels["xid"]) for labels, v in rows if v > 0 and labels.get("xid", "").isdigit()]
    return float(max(codes, default=0))


def _gpu_value(node: _Node, metric: DcgmMetric, uuid: str) -> float | None:
    if metric.reduce == "max_xid":
        return _max_xid(node, metric.sources[0], uuid)
    return _value(node, metric.sources, uuid)


def _metric_samples(node: _Node, metric: DcgmMetric) -> list[Sample]:
    samples: list[Sample] = []
    for uuid, gpu_labels in sorted(node.gpus.items(), key=lambda item: int(item[1][0])):
        # Pods: which MIG instance a process runs on is not known, so none on a MIG GPU.
        pod = node.pods.get(uuid, NO_POD) if uuid not in node.instances else NO_POD
        labels = (*gpu_labels, *pod)
        instances = node.instances.get(uuid, {}) if metric.mig else {}
        for instance, profile in sorted(instances.items(), key=lambda item: int(item[0])):
            value = _value(node, metric.mig, uuid, instance)
            if value is not None:
                series = (*labels, instance, profile)
                samples.append(Sample(metric.spec, series, value * metric.scale))
        if instances:
            continue  # a MIG GPU's memory and activity are its instances': never counted twice
        value = _gpu_value(node, metric, uuid)
        if value is not None:
            extra = ("", "") if metric.mig else ()
            samples.append(Sample(metric.spec, (*labels, *extra), value * metric.scale))
    return samples


class DcgmCompat:
    """Derives dcgm-exporter's series from native samples; stateless between snapshots."""

    def __init__(self, hostname: str | None = None) -> None:
        self._hostname = hostname or socket.gethostname()

    @property
    def specs(self) -> Sequence[MetricSpec]:
        return SPECS

    def samples(self, native: Iterable[Sample]) -> list[Sample]:
        node = _index(native)
        _context(node, self._hostname)
        return [sample for metric in TABLE for sample in _metric_samples(node, metric)]
