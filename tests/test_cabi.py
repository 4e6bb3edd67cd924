"""The fake beneath pynvml: NVIDIA's binding runs, the C interface is nvml.h's, wrong calls fail.

Expected values are read from nvml.h's text by hand (structure sizes), from the H200 capture
(memory) or from the issue's reproduction of the H200 segfault, never from the fake's formulas.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from suanli_sim.binding import pynvml
from suanli_sim.cabi import library, violations
from suanli_sim.cabi.header import header, header_path
from suanli_sim.cabi.nvml import CAbiNvml
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[1]
H200 = Path("/work/shared/reference/h200/pynvml-direct-idle.json")
MIB = 1024 * 1024


def bound(scenario: str = "h100-8", t: float = 30.0) -> CAbiNvml:
    loaded = parse_scenario(scenario) if "\n" in scenario else load_scenario(scenario)
    nv = CAbiNvml(FakeNvml(loaded, clock=lambda: t, sleep=lambda s: None))
    nv.nvmlInit()
    return nv


def test_nvml_h_is_nvidias_header_from_the_test_extra() -> None:
    path = header_path()
    assert path.name == "nvml.h" and "nvidia" in str(path)
    text = path.read_text(errors="replace")
    assert "nvmlReturn_t DECLDIR nvmlDeviceGetGpuFabricInfoV(" in text


def test_structure_sizes_are_the_headers() -> None:
    """Sizes added up by hand from nvml.h's field lists (x86-64 alignment)."""
    h = header()
    # fieldId, scopeId (4+4), timestamp, latencyUsec (8+8), valueType, nvmlReturn (4+4), value (8)
    assert ctypes.sizeof(h.layout("nvmlFieldValue_t")) == 40
    # busIdLegacy[16], domain, bus, device, pciDeviceId, pciSubSystemId (5*4), busId[32]
    assert ctypes.sizeof(h.layout("nvmlPciInfo_t")) == 68
    # version (4, padded to 8), total, reserved, free, used (4*8)
    assert ctypes.sizeof(h.layout("nvmlMemory_v2_t")) == 40
    # NVML_STRUCT_VERSION(Memory, 2) = sizeof | 2 << 24: what pynvml sets for a v2 call
    assert h.version_of("nvmlMemory_v2_t") == 40 | 2 << 24 == pynvml.nvmlMemory_v2


def test_the_h200_segfault_is_caught_as_a_violation() -> None:
    """shared/reference/h200: the structure passed by value to nvmlDeviceGetGpuFabricInfoV
    killed a real H200's Python process. Here the call fails loudly instead."""
    nv = bound("h200-8")
    handle = nv.nvmlDeviceGetHandleByIndex(0)
    info = pynvml.c_nvmlGpuFabricInfoV_t()
    info.version = pynvml.nvmlGpuFabricInfo_v2
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetGpuFabricInfoV(handle, info)
    found = violations.take()
    assert len(found) == 1
    assert found[0].function == "nvmlDeviceGetGpuFabricInfoV"
    assert "structure by value" in found[0].problem and "pointer" in found[0].problem
    nv.nvmlDeviceGetGpuFabricInfoV(handle, ctypes.byref(info))  # as the H200 answered it
    assert violations.take() == []


@pytest.mark.parametrize(
    ("version", "words"),
    [(0, "version is 0x0"), (pynvml.nvmlGpuFabricInfo_v2 + 4, "version is")],
)
def test_a_wrong_structure_version_is_a_violation(version: int, words: str) -> None:
    nv = bound("h200-8")
    info = pynvml.c_nvmlGpuFabricInfoV_t()
    info.version = version
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetGpuFabricInfoV(nv.nvmlDeviceGetHandleByIndex(0), ctypes.byref(info))
    assert [words in v.problem for v in violations.take()] == [True]


def test_a_buffer_smaller_than_the_structure_is_a_violation() -> None:
    nv = bound()
    small = (ctypes.c_ubyte * 8)()  # nvmlGpuFabricInfo_t has 28 bytes
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetGpuFabricInfo(nv.nvmlDeviceGetHandleByIndex(0), ctypes.byref(small))
    (found,) = violations.take()
    assert "28" in found.problem and "past the caller's buffer" in found.problem


def test_a_violation_fails_the_test_it_happens_in(tmp_path: Path) -> None:
    test = tmp_path / "test_wrong_call.py"
    test.write_text(
        textwrap.dedent(
            """
            import pynvml
            from suanli_sim.cabi.nvml import CAbiNvml
            from suanli_sim.fake_nvml import FakeNvml
            from suanli_sim.fake_scenario import load_scenario

            def test_by_value():
                nv = CAbiNvml(FakeNvml(load_scenario("h200-8")))
                nv.nvmlInit()
                info = pynvml.c_nvmlGpuFabricInfoV_t()
                info.version = pynvml.nvmlGpuFabricInfo_v2
                try:
                    nv.nvmlDeviceGetGpuFabricInfoV(nv.nvmlDeviceGetHandleByIndex(0), info)
                except pynvml.NVMLError:
                    pass  # the agent would carry on: only the recorded violation tells
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(violations.ENV, None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", str(test)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout
    assert "calls that break NVML's C interface" in done.stdout
    assert "nvmlDeviceGetGpuFabricInfoV: a c_nvmlGpuFabricInfo_v2_t structure by value" in (
        done.stdout
    )


def test_memory_v1_and_v2_through_the_binding_against_the_h200_capture() -> None:
    """v1 counts the driver's reservation as used, v2 reports it apart (pynvml's own
    versioned call sets the structure's version); the total is the H200's."""
    nv = bound("idle-8" if not H200.exists() else "h200-8", t=5.0)
    handle = nv.nvmlDeviceGetHandleByIndex(0)
    v1 = nv.nvmlDeviceGetMemoryInfo(handle)
    v2 = nv.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
    assert v2.version == pynvml.nvmlMemory_v2
    assert v1.used == v2.used + v2.reserved and v1.total == v2.total
    assert v1.free == v2.free
    if H200.exists():
        captured = json.loads(H200.read_text())["gpus"][0]["MemoryInfo_v2"]
        assert v2.total == captured["total"] == 150754820096


def test_return_codes_become_pynvmls_error_classes() -> None:
    nv = bound(
        "name: lost\ngpus: {model: H100-SXM5-80GB, count: 2}\n"
        "faults:\n"
        "  - {kind: gpu_lost, gpu: 1, at: 0}\n"
        "  - {kind: missing_functions, functions: [nvmlDeviceGetComputeRunningProcesses_v3]}\n"
    )
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        nv.nvmlDeviceGetHandleByIndex(1)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetHandleByIndex(7)
    # pynvml's @throwOnVersionMismatch turns FUNCTION_NOT_FOUND from the library into this
    with pytest.raises(pynvml.NVMLLibraryMismatchError):
        nv.nvmlDeviceGetComputeRunningProcesses(nv.nvmlDeviceGetHandleByIndex(0))


def test_two_fakes_share_the_library_and_keep_their_handles() -> None:
    h100, h200 = bound("h100-8"), bound("h200-8")
    first = h100.nvmlDeviceGetHandleByIndex(0)
    assert h100.nvmlDeviceGetName(first) == "NVIDIA H100 80GB HBM3"
    assert h200.nvmlDeviceGetName(h200.nvmlDeviceGetHandleByIndex(0)) == "NVIDIA H200"
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        h200.nvmlDeviceGetName(first)  # not one of this node's handles
    assert (
        ctypes.cast(first, ctypes.c_void_p).value
        == ctypes.cast(h100.nvmlDeviceGetHandleByIndex(0), ctypes.c_void_p).value
    )  # the same address each time, as on the H200


def test_a_string_too_long_for_the_buffer_answers_insufficient_size() -> None:
    nv = bound()
    function = pynvml._nvmlGetFunctionPointer("nvmlDeviceGetUUID")
    buffer = ctypes.create_string_buffer(8)
    with nv_bound(nv):
        ret = function(nv.nvmlDeviceGetHandleByIndex(0), buffer, ctypes.c_uint(8))
    assert ret == pynvml.NVML_ERROR_INSUFFICIENT_SIZE


@contextlib.contextmanager
def nv_bound(nv: CAbiNvml) -> Iterator[None]:
    """Calls made straight into the library answered by `nv`'s fake."""
    library.enter(nv)
    try:
        yield
    finally:
        library.leave()
