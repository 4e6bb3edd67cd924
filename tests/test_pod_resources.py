"""A GPU a pod or a Slurm job holds is that job's, whether or not a process of it runs there.

The kubelet is a real gRPC server (grpcio) on a unix socket serving the kubelet's PodResources
v1 proto (`suanli_sim/podresources_v1`) to the agent's own client, with the pods a GPU node
shows: a vLLM pod running on GPUs 0-3, a notebook pod holding GPUs 4-7 with nothing running
yet, and pods without devices. The node is the simulator's 8x H100 under the whole agent
(`agent.app.build`). A missing, refusing, hanging or garbled kubelet leaves the processes'
attribution and a metric that says why.
"""

from __future__ import annotations

import socket
import tempfile
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from agent.hw.pod_resources import KubeletError, PodResourcesClient
from agent.sampler import Snapshot
from tests.kubelet_helpers import (
    NOTEBOOK,
    NOTEBOOK_UID,
    QWEN,
    QWEN_UID,
    SCENARIO,
    Kubelet,
    Node,
    jobs_on,
    labelled,
    pod,
    pod_log_dirs,
    source_state,
    values,
)


@pytest.fixture
def root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="k8s", dir="/tmp") as folder:
        yield Path(folder)


@pytest.fixture
def node(root: Path) -> Iterator[Node]:
    made = Node(root)
    yield made
    made.close()


# --- the kubelet answers ----------------------------------------------------------------------


def test_a_pod_holding_gpus_without_a_process_gets_them_and_their_energy(node: Node) -> None:
    pod_log_dirs(node.root)
    kubelet = Kubelet(node.uuids())
    node.serve(kubelet)
    before = node.wait_for("ok")
    on = jobs_on(before)
    qwen = (QWEN_UID, *QWEN, "vllm")
    notebook = (NOTEBOOK_UID, *NOTEBOOK, "notebook")
    # one series per GPU: the process's cgroup and the kubelet name the same container
    assert on == {0: [qwen], 1: [qwen], 2: [qwen], 3: [qwen]} | {g: [notebook] for g in range(4, 8)}
    assert source_state(before) == {"kubelet": (1.0, "ok")}
    processes = values(before, "suanli_gpu_processes")
    assert [processes[str(g)] for g in range(8)] == [1.0] * 4 + [0.0] * 4

    after = node.sample(at=120.0)
    gpu_joules = {
        g: values(after, "suanli_gpu_energy_joules_total")[g]
        - values(before, "suanli_gpu_energy_joules_total")[g]
        for g in map(str, range(8))
    }
    job_joules = values(after, "suanli_job_gpu_energy_joules_total")
    job_before = values(before, "suanli_job_gpu_energy_joules_total")
    notebook_increase = job_joules[NOTEBOOK_UID] - job_before.get(NOTEBOOK_UID, 0.0)
    # a held GPU's energy is its holder's: nothing goes to job_id="none"
    assert notebook_increase == pytest.approx(sum(gpu_joules[g] for g in "4567"), rel=1e-9)
    assert job_joules.get("none", 0.0) == job_before.get("none", 0.0)
    assert notebook_increase > 4 * 60.0 * 60.0  # no H100 draws under 60 W, idle or not


def test_without_the_pod_log_directories_a_pod_is_named_by_namespace_and_name(node: Node) -> None:
    kubelet = Kubelet(node.uuids())
    node.serve(kubelet)
    on = jobs_on(node.wait_for("ok"))
    # the running pod keeps the UID its cgroup gives; the idle one has only its names
    assert on[0] == [(QWEN_UID, *QWEN, "vllm")]
    assert on[5] == [("research/notebook-7c4f9b-x2kq", *NOTEBOOK, "notebook")]


def test_allocatable_gpus_show_the_gpu_the_device_plugin_no_longer_offers(node: Node) -> None:
    kubelet = Kubelet(node.uuids())
    kubelet.unhealthy = {6}  # the device plugin marks a GPU unhealthy after an XID 79
    node.serve(kubelet)
    offered = values(node.wait_for("ok"), "suanli_gpu_kubelet_allocatable")
    assert offered == {str(g): (0.0 if g == 6 else 1.0) for g in range(8)}


def test_a_kubelet_without_get_allocatable_still_names_the_holders(node: Node) -> None:
    kubelet = Kubelet(node.uuids())
    kubelet.allocatable_status = grpc.StatusCode.UNIMPLEMENTED  # before Kubernetes 1.23
    node.serve(kubelet)
    snapshot = node.wait_for("ok")
    assert jobs_on(snapshot)[7][0][1:] == (*NOTEBOOK, "notebook")
    assert values(snapshot, "suanli_gpu_kubelet_allocatable") == {}


# --- the kubelet does not answer: processes alone, and the metric says why --------------------


def assert_processes_only(snapshot: Snapshot) -> None:
    on = jobs_on(snapshot)
    assert sorted(on) == [0, 1, 2, 3]  # the idle pod's GPUs show no job
    assert {entry[0] for entries in on.values() for entry in entries} == {QWEN_UID}
    assert len(values(snapshot, "suanli_gpu_power_watts")) == 8
    assert values(snapshot, "suanli_gpu_kubelet_allocatable") == {}


def test_a_missing_socket_falls_back_to_the_processes(node: Node) -> None:
    snapshot = node.wait_for("missing")
    assert source_state(snapshot) == {"kubelet": (0.0, "missing")}
    assert_processes_only(snapshot)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (grpc.StatusCode.UNIMPLEMENTED, "unimplemented"),
        (grpc.StatusCode.PERMISSION_DENIED, "permission"),
    ],
)
def test_a_refusing_kubelet_falls_back_to_the_processes(
    node: Node, status: grpc.StatusCode, reason: str
) -> None:
    kubelet = Kubelet(node.uuids())
    kubelet.list_status = status
    node.serve(kubelet)
    snapshot = node.wait_for(reason)
    assert source_state(snapshot)["kubelet"] == (0.0, reason)
    assert_processes_only(snapshot)


def test_a_socket_nobody_listens_on_is_refused(node: Node) -> None:
    node.socket.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(node.socket))  # a kubelet that died left its socket file behind
    try:
        assert_processes_only(node.wait_for("refused"))
    finally:
        stale.close()


def test_a_garbled_answer_falls_back_to_the_processes(node: Node) -> None:
    garbled = grpc.method_handlers_generic_handler(
        "v1.PodResourcesLister",
        {
            "List": grpc.unary_unary_rpc_method_handler(
                lambda request, context: b"\x0a\xff\xff\xff\xff\x0f",
                request_deserializer=lambda data: data,
                response_serializer=lambda data: data,
            )
        },
    )
    node.socket.parent.mkdir(parents=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[garbled])
    server.add_insecure_port(f"unix://{node.socket}")
    server.start()
    node.server = server
    assert_processes_only(node.wait_for("bad_answer"))


def test_a_hanging_kubelet_never_delays_the_gpu_readings(node: Node) -> None:
    kubelet = Kubelet(node.uuids())
    kubelet.hang.set()
    node.serve(kubelet)
    try:
        deadline = time.monotonic() + 5.0
        while kubelet.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert kubelet.calls > 0, "the agent never called the kubelet"
        cycles = []
        while time.monotonic() < deadline:  # the first call hangs until its 1 s deadline
            started = time.monotonic()
            snapshot = node.sample()
            cycles.append(time.monotonic() - started)
            if source_state(snapshot).get("kubelet") == (0.0, "timeout"):
                break
        assert source_state(snapshot)["kubelet"] == (0.0, "timeout")
        assert_processes_only(snapshot)
        assert all(r.success for r in snapshot.results), [r.error for r in snapshot.results]
        # a cycle of this simulated node takes milliseconds; a kubelet deadline is a second
        assert len(cycles) >= 3 and max(cycles) < 0.5, cycles
        hung = kubelet.calls
        while kubelet.calls == hung and time.monotonic() < deadline + 2.0:
            time.sleep(0.01)  # the next call is in flight, hanging again
        assert kubelet.calls > hung
        started = time.monotonic()  # stopping the agent does not wait for that call
        for collector in node.agent.collectors:
            collector.close()
        assert time.monotonic() - started < 0.5
    finally:
        kubelet.release.set()


def test_attribution_comes_back_with_the_kubelet(node: Node) -> None:
    assert_processes_only(node.wait_for("missing"))
    pod_log_dirs(node.root)
    node.serve(Kubelet(node.uuids()))  # the kubelet restarts and makes its socket again
    snapshot = node.wait_for("ok")
    assert jobs_on(snapshot)[4] == [(NOTEBOOK_UID, *NOTEBOOK, "notebook")]


def test_an_empty_socket_option_turns_the_kubelet_off(root: Path) -> None:
    node = Node(root, kubelet_socket="")
    try:
        snapshot = node.sample()
        assert source_state(snapshot) == {}
        assert "suanli_job_allocation_source_up" not in {
            s.spec.name for r in snapshot.results for s in r.samples
        }
    finally:
        node.close()


def test_a_pod_holding_a_mig_instance_is_attributed_on_its_gpu(root: Path) -> None:
    node = Node(root, "h100-mig")
    try:
        instances = labelled(node.sample(), "suanli_mig_info")
        idle = next(x for x in instances if x["gpu"] == "3" and x["profile"] == "3g.40gb")
        kubelet = Kubelet(node.uuids())
        notebook = pod(
            *NOTEBOOK, ("notebook", [idle["mig_uuid"]], 0), resource="nvidia.com/mig-3g.40gb"
        )
        kubelet.pods = [notebook]  # the device plugin's mixed strategy: one resource per profile
        node.serve(kubelet)
        on = jobs_on(node.wait_for("ok"))
        assert on[3] == [("research/notebook-7c4f9b-x2kq", *NOTEBOOK, "notebook")]
    finally:
        node.close()


def test_the_simulated_node_serves_its_pods_on_a_kubelet(root: Path) -> None:
    """`--fake` nodes: the scenario's pods on the simulator's kubelet, one of them holding GPUs
    with no process (`processes_per_gpu: 0`)."""
    scenario = (
        SCENARIO
        + f"""
  - id: notebook
    scheduler: kubernetes
    namespace: {NOTEBOOK[0]}
    pod: {NOTEBOOK[1]}
    pod_uid: {NOTEBOOK_UID}
    comm: notebook
    gpus: [6, 7]
    processes_per_gpu: 0
kubelet: true
"""
    )
    node = Node(root, scenario)
    try:
        snapshot = node.wait_for("ok")
        on = jobs_on(snapshot)
        assert on[6] == on[7] == [(NOTEBOOK_UID, *NOTEBOOK, "notebook")]
        assert on[0] == [(QWEN_UID, *QWEN, "vllm")]
        assert sorted(on) == [0, 1, 2, 3, 6, 7]
        assert values(snapshot, "suanli_gpu_processes")["6"] == 0.0
        assert set(values(snapshot, "suanli_gpu_kubelet_allocatable").values()) == {1.0}
    finally:
        node.close()
    # the simulated kubelet stops with the agent (a gRPC server left running makes forking
    # this process unsafe: a child aborted in grpc's epoll_wait before it could exec)
    with pytest.raises(KubeletError) as stopped:
        PodResourcesClient(str(node.socket), timeout_s=1.0).read()
    assert stopped.value.reason in ("refused", "missing")


def test_a_stopped_agent_makes_no_new_call_to_the_kubelet(node: Node) -> None:
    """Closing the client ends its call in flight and every later one: a refresh still running
    when the agent stops cannot open a connection that nothing would close."""
    node.serve(Kubelet(node.uuids()))
    client = PodResourcesClient(str(node.socket), timeout_s=1.0)
    assert client.read().holders  # the vLLM pod's GPUs
    client.close()
    with pytest.raises(KubeletError) as closed:
        client.read()
    assert closed.value.reason == "closed"


def test_pods_sharing_a_time_sliced_gpu_are_all_on_it(node: Node) -> None:
    uuids = node.uuids()
    kubelet = Kubelet(uuids)
    # the device plugin's time-slicing (replicas: 4) hands out `<uuid>::<replica>`
    kubelet.pods = [
        pod("team-a", "jupyter-a-0", ("lab", [f"{uuids[6]}::0"], 1)),
        pod("team-b", "jupyter-b-0", ("lab", [f"{uuids[6]}::2"], 1)),
    ]
    node.serve(kubelet)
    on = jobs_on(node.wait_for("ok"))
    assert sorted(on[6]) == [
        ("team-a/jupyter-a-0", "team-a", "jupyter-a-0", "lab"),
        ("team-b/jupyter-b-0", "team-b", "jupyter-b-0", "lab"),
    ]
