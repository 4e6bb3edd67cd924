"""The kubelet's PodResources v1 API: `api.proto` (a faithful copy of
k8s.io/kubelet/pkg/apis/podresources/v1/api.proto) and the Python modules grpcio-tools made of it.

The generated modules are committed, never edited. After changing `api.proto`, regenerate them
from the repository root with the grpcio-tools of the test extra and the same major versions of
grpcio and protobuf as the dependencies in pyproject.toml:

    python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. \\
        agent/hw/podresources_v1/api.proto

Importing `api_pb2_grpc` imports grpc; `agent.hw.pod_resources` does so only when a kubelet socket
is there to be read.
"""
