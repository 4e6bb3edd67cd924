"""The Kubernetes manifests under deploy/kubernetes/, checked without a cluster.

No API server is involved: the manifests are parsed, and what they say is checked against the
agent itself (its --help, its configuration loader, its --check-config) and against each other
(probe port = listen port, mounts = configured paths, selectors = labels).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from agent.config import load, parse_listen_address

RunAgent = Callable[..., "subprocess.CompletedProcess[str]"]

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "prometheus-scrape-config.yaml")
OPERATOR = "components/prometheus-operator"
COMPONENT_MANIFESTS = sorted((K8S / OPERATOR).glob("*.yaml"))
PODMONITOR = f"{OPERATOR}/podmonitor.yaml"
SERVICEMONITOR = f"{OPERATOR}/servicemonitor.yaml"
NAMESPACE = "suanli"


def objects(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc is not None]


def only(name: str, kind: str) -> dict[str, Any]:
    found = [doc for doc in objects(name) if doc["kind"] == kind]
    assert len(found) == 1, f"{name}: {len(found)} {kind} objects"
    return found[0]


def daemonset() -> dict[str, Any]:
    return only("daemonset.yaml", "DaemonSet")


def agent_container() -> dict[str, Any]:
    containers = daemonset()["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


@pytest.fixture
def pod_config(tmp_path: Path) -> Path:
    """The ConfigMap's agent.yaml as a file."""
    path = tmp_path / "agent.yaml"
    path.write_text(only("configmap.yaml", "ConfigMap")["data"]["agent.yaml"])
    return path


def mounted_at(container_path: str) -> dict[str, Any]:
    """The volume mounted at `container_path` (exactly), with its mount entry."""
    spec = daemonset()["spec"]["template"]["spec"]
    mounts = [m for m in agent_container()["volumeMounts"] if m["mountPath"] == container_path]
    assert len(mounts) == 1, f"nothing (or several) mounted at {container_path}"
    volume = next(v for v in spec["volumes"] if v["name"] == mounts[0]["name"])
    return {"mount": mounts[0], "volume": volume}


# --- every manifest --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", MANIFESTS + COMPONENT_MANIFESTS, ids=lambda p: str(p.relative_to(K8S))
)
def test_manifest_objects_are_well_formed(path: Path) -> None:
    name = str(path.relative_to(K8S))
    docs = objects(name)
    assert docs, f"{name} holds no object"
    for doc in docs:
        assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"], doc
        assert isinstance(doc.get("kind"), str) and doc["kind"], doc
        if doc["kind"] == "Component":  # kustomize components carry no metadata
            continue
        assert isinstance(doc.get("metadata", {}).get("name"), str), doc
        if doc["kind"] not in ("Namespace", "Kustomization"):
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{name}: {doc['kind']}"


def test_kustomization_lists_existing_manifests_and_the_core_objects() -> None:
    kustomization = only("kustomization.yaml", "Kustomization")
    resources = kustomization["resources"]
    for name in resources:
        assert (K8S / name).is_file(), name
    kinds = {doc["kind"] for name in resources for doc in objects(name)}
    assert {"Namespace", "ConfigMap", "DaemonSet", "Service"} <= kinds
    assert kustomization["namespace"] == NAMESPACE
    # the Operator's objects need its CRDs: only through the optional component
    assert not kinds & {"PodMonitor", "ServiceMonitor"}
    assert not kustomization.get("components")


def test_prometheus_operator_component_adds_one_monitor() -> None:
    component = only(f"{OPERATOR}/kustomization.yaml", "Component")
    assert component["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    for name in component["resources"]:
        assert (K8S / OPERATOR / name).is_file(), name
    kinds = [
        doc["kind"] for name in component["resources"] for doc in objects(f"{OPERATOR}/{name}")
    ]
    # a PodMonitor or a ServiceMonitor, never both: each agent would be scraped twice
    assert kinds in (["PodMonitor"], ["ServiceMonitor"])
    assert {p.name for p in COMPONENT_MANIFESTS} == {
        "kustomization.yaml",
        "podmonitor.yaml",
        "servicemonitor.yaml",
    }


def test_namespace_allows_host_pid_and_host_paths() -> None:
    namespace = only("namespace.yaml", "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    # baseline and restricted Pod Security Standards reject hostPID and hostPath volumes
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"


# --- the configuration the pod runs with -----------------------------------------------------


def test_configmap_agent_yaml_passes_check_config(pod_config: Path, run_agent: RunAgent) -> None:
    # --check-config checks the paths exist: in the pod, /host is this machine's / (the
    # DaemonSet mounts the host's root there), so check them as the pod would see them here
    text = pod_config.read_text()
    assert "/host/" in text
    pod_config.write_text(
        re.sub(r"(?<=: )/host(?=/|$)", "", text, flags=re.M).replace(": \n", ": /\n")
    )
    result = run_agent("--check-config", "--config", str(pod_config))
    assert result.returncode == 0, result.stdout + result.stderr


def test_container_uses_only_flags_the_agent_knows_and_reads_the_mounted_config() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "agent", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=ROOT,
    ).stdout
    known = set(re.findall(r"--[a-z][a-z-]*", help_text))
    container = agent_container()
    assert container["command"] == ["suanli-agent"]
    words = container.get("args", [])
    flags = {word.split("=")[0] for word in words if word.startswith("--")}
    assert flags <= known, f"unknown flags: {flags - known}"
    config_path = PurePosixPath(words[words.index("--config") + 1])
    config_mount = mounted_at(str(config_path.parent))
    assert config_mount["mount"]["readOnly"] is True
    configmap = only("configmap.yaml", "ConfigMap")
    assert config_mount["volume"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert config_path.name in configmap["data"]


def test_probes_hit_healthz_on_the_port_the_agent_listens_on(pod_config: Path) -> None:
    _, port = parse_listen_address(load(pod_config).listen_address)
    container = agent_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz", probe
        assert get["port"] in ("metrics", port), probe
        if get["port"] == "metrics":
            assert ports["metrics"] == port


def test_mounts_match_the_configured_host_paths(pod_config: Path) -> None:
    collectors = load(pod_config).collectors
    wanted = {
        collectors.host.procfs: "/proc",
        collectors.jobs.procfs: "/proc",
        collectors.power.sysfs: "/sys",
    }
    for container_path, host_path in wanted.items():
        found = mounted_at(container_path)
        assert found["mount"]["readOnly"] is True, container_path
        assert found["volume"]["hostPath"]["path"] == host_path, container_path
    # the runtimes' state (pod names) sits under host_root exactly where it sits under /
    host_root = PurePosixPath(collectors.jobs.host_root)
    assert str(host_root) == "/host"
    runtime_dirs = {
        "run/containerd/io.containerd.runtime.v2.task/k8s.io",
        "run/containers/storage/overlay-containers",
        "var/lib/docker/containers",
    }
    for relative in runtime_dirs:
        found = mounted_at(str(host_root / relative))
        assert found["mount"]["readOnly"] is True, relative
        assert found["volume"]["hostPath"]["path"] == "/" + relative
    # and those are exactly the directories the agent reads names from (agent/hw/pods.py)
    from agent.hw import pods

    assert {source[0].split("/{cid}/")[0] for source in pods._SOURCES} == runtime_dirs


def test_the_kubelet_pod_resources_socket_and_pod_log_names_are_mounted(pod_config: Path) -> None:
    """Allocations (docs/jobs.md): the PodResources socket's directory at its own path, and the
    kubelet's pod log directories (namespace_pod_uid names) under host_root."""
    jobs = load(pod_config).collectors.jobs
    socket = PurePosixPath(jobs.kubelet_socket)
    assert str(socket) == "/var/lib/kubelet/pod-resources/kubelet.sock"
    found = mounted_at(str(socket.parent))
    assert found["mount"]["readOnly"] is True
    assert found["volume"]["hostPath"]["path"] == str(socket.parent)
    logs = mounted_at(str(PurePosixPath(jobs.host_root) / "var/log/pods"))
    assert logs["mount"]["readOnly"] is True
    assert logs["volume"]["hostPath"]["path"] == "/var/log/pods"
    assert jobs.slurm_cgroup_root == ""  # no Slurm on Kubernetes nodes


def test_every_host_path_is_read_only_and_no_runtime_socket_directory_is_mounted() -> None:
    spec = daemonset()["spec"]["template"]["spec"]
    host_volumes = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    for mount in agent_container()["volumeMounts"]:
        if mount["name"] in host_volumes:
            assert mount.get("readOnly") is True, mount
    # connect() ignores read-only mounts: the API sockets of containerd, CRI-O and Docker stay out
    for path in host_volumes.values():
        assert path not in ("/run", "/var/run", "/run/containerd", "/run/containers", "/run/crio")
        assert not path.endswith(".sock")


# --- the pod's privileges and placement ------------------------------------------------------


def test_pod_sees_host_pids_and_every_gpu_without_allocating_one() -> None:
    spec = daemonset()["spec"]["template"]["spec"]
    assert spec["hostPID"] is True
    assert spec["runtimeClassName"] == "nvidia"
    env = {e["name"]: e["value"] for e in agent_container()["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "utility"
    resources = agent_container()["resources"]
    for part in ("requests", "limits"):
        assert "nvidia.com/gpu" not in resources[part]  # would take a GPU away from the jobs
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert any(t.get("key") == "nvidia.com/gpu" for t in spec["tolerations"])
    assert spec["priorityClassName"] == "system-node-critical"
    assert spec["automountServiceAccountToken"] is False


def test_container_is_unprivileged_with_a_read_only_root() -> None:
    context = agent_container()["securityContext"]
    assert context["privileged"] is False
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in context["capabilities"]
    assert context["runAsUser"] == 0  # owner access to RAPL and runtime state; see daemonset.yaml


def test_resources() -> None:
    resources = agent_container()["resources"]
    assert resources["requests"] == {"cpu": "50m", "memory": "64Mi"}
    assert resources["limits"] == {"cpu": "200m", "memory": "128Mi"}


def test_selectors_match_the_pod_labels() -> None:
    ds = daemonset()
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    selector = ds["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    service = only("service.yaml", "Service")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["name"] == "metrics" and port["port"] == 9445
    monitor = only(PODMONITOR, "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == [
        p["name"] for p in agent_container()["ports"]
    ]


def test_servicemonitor_selects_the_services_labels_and_port() -> None:
    service = only("service.yaml", "Service")
    monitor = only(SERVICEMONITOR, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    assert endpoint["path"] == "/metrics"


# --- topology labels for Prometheus ----------------------------------------------------------


def _node_label_meta(label: str) -> str:
    """Prometheus's meta label for a node label: every non-alphanumeric character becomes _."""
    return "__meta_kubernetes_node_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


TOPOLOGY = {
    name: _node_label_meta(f"topology.suanli.io/{name}") for name in ("cluster", "hall", "rack")
}


@pytest.mark.parametrize(
    ("name", "kind", "endpoints"),
    [
        (PODMONITOR, "PodMonitor", "podMetricsEndpoints"),
        (SERVICEMONITOR, "ServiceMonitor", "endpoints"),
    ],
)
def test_monitors_copy_topology_from_node_labels(name: str, kind: str, endpoints: str) -> None:
    monitor = only(name, kind)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["attachMetadata"] == {"node": True}
    (endpoint,) = monitor["spec"][endpoints]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    copied = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    for target, meta in TOPOLOGY.items():
        assert copied[target] == [meta]
    assert copied["instance"] == ["__meta_kubernetes_pod_node_name"]


def test_plain_prometheus_scrape_config_copies_topology_from_node_labels() -> None:
    config = yaml.safe_load((K8S / "prometheus-scrape-config.yaml").read_text())
    (job,) = config["scrape_configs"]
    (sd,) = job["kubernetes_sd_configs"]
    assert sd["role"] == "pod" and sd["attach_metadata"] == {"node": True}
    assert sd["namespaces"]["names"] == [NAMESPACE]
    relabels = job["relabel_configs"]
    copied = {r["target_label"]: r["source_labels"] for r in relabels if "target_label" in r}
    for target, meta in TOPOLOGY.items():
        assert copied[target] == [meta]
    keeps = {r["source_labels"][0]: r["regex"] for r in relabels if r.get("action") == "keep"}
    assert keeps["__meta_kubernetes_pod_container_port_name"] == "metrics"
    assert keeps["__meta_kubernetes_pod_label_app_kubernetes_io_name"] == "suanli-agent"
