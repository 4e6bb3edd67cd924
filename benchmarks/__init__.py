"""Suanli agent benchmarks: `python benchmarks/run.py [--quick]` (not part of the test suite)."""
