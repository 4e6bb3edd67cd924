"""Hostile configuration files: `--check-config` exits 2 with one line per problem, quickly, in
bounded memory, and never with a traceback, whatever the file holds.

A hypothesis fuzzer builds files from a valid part and one hostile piece (an alias bomb, nesting
thousands deep, a huge integer, invalid Unicode or NUL escapes, raw binary, out-of-range
intervals, bad label values, missing paths) and runs the CLI's `main` in this process, measuring
time and memory (tracemalloc); the worst pieces also run as a real process under a memory limit.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.cli import EXIT_CONFIG, main
from tests.conftest import agent_env

MAX_SECONDS = 2.0
MAX_BYTES = 50 << 20  # peak Python allocations of one check


def alias_bomb(levels: int, width: int) -> str:
    names = [f"l{i}" for i in range(levels)]
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['lol'] * width)}]"]
    for before, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [{', '.join([f'*{before}'] * width)}]")
    return "\n".join(lines) + "\n"


VALID = st.sampled_from(
    ["", "interval: 5s\n", "log: {level: debug}\n", "topology: {cluster: a, rack: R1}\n"]
)
HOSTILE = st.one_of(
    st.builds(alias_bomb, st.integers(2, 12), st.integers(2, 12)),
    st.integers(33, 20_000).map(lambda n: "interval: " + "[" * n + "]" * n + "\n"),
    st.integers(33, 2_000).map(
        lambda n: "".join(f"{' ' * 2 * i}k{i}:\n" for i in range(n)) + " " * 2 * n + "x\n"
    ),
    st.integers(21, 20_000).map(
        lambda n: f"collectors: {{jobs: {{per_process_limit: {'9' * n}}}}}\n"
    ),
    st.sampled_from(['"\\ud800"', '"\\udfff"', '"a\\0b"', '"\\x00"']).map(
        lambda s: f"topology: {{rack: {s}}}\n"
    ),
    st.sampled_from(["1ms", "99ms", "2h", "999999999999h", "1" * 400 + "s", "-5s"]).map(
        lambda s: f"interval: {s}\n"
    ),
    (st.integers(1, 31) | st.just(127)).map(lambda c: f'topology: {{hall: "R\\x{c:02x}"}}\n'),
    st.integers(257, 5000).map(lambda n: f"topology: {{cluster: {'c' * n}}}\n"),
    st.sampled_from(["/nonexistent", "/etc/hostname", "/dev/null"]).map(
        lambda p: f"collectors: {{host: {{procfs: {p}}}}}\n"
    ),
)
BINARY = st.binary(min_size=1, max_size=512).filter(lambda b: not _utf8(b))


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_config(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    tracemalloc.start()
    began = time.monotonic()
    try:
        code = main(["--check-config", "--config", str(path)])
    finally:
        took = time.monotonic() - began
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    out = capsys.readouterr()
    assert took < MAX_SECONDS, f"{took:.1f}s"
    assert peak < MAX_BYTES, f"{peak >> 20} MiB"
    return code, out.err.splitlines()


def assert_refused(code: int, lines: list[str]) -> None:
    assert code == EXIT_CONFIG, lines
    assert lines, "no reason given"
    for line in lines:
        assert line.startswith("suanli-agent: config: "), line
        assert "Traceback" not in line and len(line) < 1000, line


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(valid=VALID, hostile=HOSTILE)
def test_a_hostile_piece_is_refused_with_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], valid: str, hostile: str
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(valid + hostile)
    assert_refused(*check_config(path, capsys))


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=BINARY)
def test_a_binary_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_bytes(data)
    assert_refused(*check_config(path, capsys))


# CI (.ci/run sets CI) must run these under the unit's limits: there a missing prlimit fails
NO_PRLIMIT = shutil.which("prlimit") is None and not os.environ.get("CI")


@pytest.mark.skipif(NO_PRLIMIT, reason="prlimit (util-linux) not installed")
@pytest.mark.parametrize(
    "text",
    [alias_bomb(9, 9), "x: " + "[" * 100_000 + "]" * 100_000, "x: " + "9" * 5000],
    ids=["alias-bomb", "deep-nesting", "huge-int"],
)
def test_the_worst_files_exit_2_in_a_process_with_256_mib(tmp_path: Path, text: str) -> None:
    """What the unit's ExecStartPre runs: the real CLI, address space capped at 256 MiB."""
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    command = ["prlimit", f"--as={256 << 20}", "--", sys.executable, "-m", "agent"]
    began = time.monotonic()
    result = subprocess.run(
        [*command, "--check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        env=agent_env(),
        timeout=60,
        check=False,
    )
    assert time.monotonic() - began < 10
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
