"""The agent's own encoders write exactly what prometheus_client's encoders write."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from agent.exposition_format import (
    OPENMETRICS,
    TEXT,
    Family,
    encode_openmetrics,
    encode_text,
    format_value,
    negotiate,
)
from agent.metrics import MetricSpec
from tests.gpu_helpers import node


class Registry:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return self.metrics


def reference(families: list[Family]) -> tuple[bytes, bytes]:
    """What prometheus_client writes for the same families: (text, OpenMetrics)."""
    metrics: list[Metric] = []
    for family in families:
        spec = family.spec
        cls = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
        metric = cls(spec.name, spec.help, labels=spec.labels)
        for labels, value in family.samples:
            metric.add_metric(labels, value)  # type: ignore[attr-defined]
        metrics.append(metric)
    registry = Registry(metrics)
    return generate_latest(registry), generate_openmetrics(registry)  # type: ignore[arg-type]


def test_a_whole_simulated_node_encodes_byte_for_byte_like_prometheus_client() -> None:
    from agent.exposition import families

    gpus = node("h100-mig", detail=True, xid_events=False)
    gpus.at(0.0)
    gpus.clock.t = 60.0
    fams = families(gpus.collector.specs(), gpus.collector.collect())
    text, openmetrics = reference(fams)
    assert encode_text(fams) == text
    assert encode_openmetrics(fams) == openmetrics


label_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**63), 2**64)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["gauge", "counter"]),
    help_text=st.text(min_size=1, max_size=30).filter(str.strip),
    samples=st.lists(st.tuples(label_text, label_text, numbers), max_size=5),
)
def test_any_labels_help_and_values_encode_the_same(
    kind: str, help_text: str, samples: list[tuple[str, str, float]]
) -> None:
    name = "suanli_test_value_total" if kind == "counter" else "suanli_test_value_bytes"
    spec = MetricSpec(name, kind, help_text, ("zone", "gpu"))  # type: ignore[arg-type]
    family = Family(spec, [((a, b), float(v)) for a, b, v in samples])
    if not family.samples:
        return
    text, openmetrics = reference([family])
    assert encode_text([family]) == text
    assert encode_openmetrics([family]) == openmetrics


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1.0, "1.0"),
        (81559.0, "81559.0"),
        (1439819.6, "1.4398196e+06"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (0.25, "0.25"),
        (1.795e9, "1.795e+09"),
    ],
)
def test_values_are_formatted_as_go_does(value: float, shown: str) -> None:
    assert format_value(value) == shown
    assert format_value(math.nan) == "NaN"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("", TEXT),
        ("text/plain", TEXT),
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
            "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            OPENMETRICS,
        ),
        ("application/openmetrics-text", OPENMETRICS),
        ("application/openmetrics-text; version=0.0.1", TEXT),
    ],
)
def test_negotiation_follows_what_prometheus_sends(accept: str, chosen: str) -> None:
    assert negotiate(accept) == chosen
