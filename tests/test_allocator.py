"""The agent gives freed memory back: a fixed mmap threshold and a trim once a minute (glibc)."""

from __future__ import annotations

import platform

import pytest

from agent.allocator import (
    ARENAS,
    M_ARENA_MAX,
    M_MMAP_THRESHOLD,
    MMAP_THRESHOLD_BYTES,
    TRIM_EVERY_S,
    Allocator,
)


class RecordingLibc:
    """Stands in for the C library: records what the agent asks of the allocator."""

    def __init__(self, mallopt_result: int = 1) -> None:
        self.calls: list[tuple[str, tuple[int, ...]]] = []
        self.mallopt_result = mallopt_result

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append(("mallopt", (parameter, value)))
        return self.mallopt_result

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", (pad,)))
        return 1


def test_the_mmap_threshold_is_fixed_at_glibc_default_and_threads_share_one_arena() -> None:
    libc = RecordingLibc()
    assert Allocator(libc).tune()
    assert libc.calls == [
        ("mallopt", (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)),
        ("mallopt", (M_ARENA_MAX, ARENAS)),
    ]


def test_a_refused_mallopt_is_reported_not_raised() -> None:
    assert not Allocator(RecordingLibc(mallopt_result=0)).tune()


def test_trims_at_most_once_a_minute() -> None:
    libc = RecordingLibc()
    allocator = Allocator(libc)
    trimmed = [allocator.trim_if_due(t) for t in (100.0, 101.0, 100.0 + TRIM_EVERY_S - 1)]
    trimmed.append(allocator.trim_if_due(100.0 + TRIM_EVERY_S))
    assert trimmed == [True, False, False, True]
    assert [name for name, _ in libc.calls] == ["malloc_trim", "malloc_trim"]


def test_without_glibc_nothing_is_called() -> None:
    allocator = Allocator(None)
    assert not allocator.available
    assert not allocator.tune()
    assert not allocator.trim_if_due(1e9)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_this_process_has_glibc_allocator_controls() -> None:
    allocator = Allocator.of_this_process()
    assert allocator.available
    assert allocator.tune()
    assert allocator.trim_if_due(0.0)
