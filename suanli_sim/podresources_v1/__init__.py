"""The kubelet's PodResources v1 API: `api.proto` (a faithful copy of
k8s.io/kubelet/pkg/apis/podresources/v1/api.proto) and the Python modules grpcio-tools made of it.

Only the simulator's kubelet (`suanli_sim.fake_kubelet`) and the tests use them, to serve the
API with grpcio and to encode answers with protobuf. The agent reads the same wire format with
the standard library alone (`agent.hw.grpc_unary`, `agent.hw.podresources_wire`) and never
imports grpc or protobuf.

The generated modules are committed, never edited. After changing `api.proto`, regenerate them
from the repository root with the grpcio-tools of the test extra and the same major versions of
grpcio and protobuf as the dependencies in pyproject.toml:

    python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. \\
        suanli_sim/podresources_v1/api.proto
"""
