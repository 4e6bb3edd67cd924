"""The center benchmark: a simulated center of N nodes under Prometheus and VictoriaMetrics.

    python -m benchmarks.center --nodes 1000 --minutes 5

writes docs/scale.md and benchmarks/center/results.json. See `__main__` for the options.
"""
