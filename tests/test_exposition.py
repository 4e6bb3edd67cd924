"""Exposition: a scrape renders the last snapshot once per format; counters carry no _created."""

from __future__ import annotations

import gzip

from prometheus_client.parser import text_string_to_metric_families

from agent.exposition import Renderer
from agent.metrics import MetricSpec, Sample
from agent.sampler import CollectorResult, Snapshot

ENERGY = MetricSpec("suanli_gpu_energy_joules_total", "counter", "Energy.", ("gpu", "uuid"))
POWER = MetricSpec("suanli_gpu_power_watts", "gauge", "Power.", ("gpu", "uuid"))
FAN = MetricSpec("suanli_gpu_fan_speed_ratio", "gauge", "Fan.", ("gpu", "uuid"))
IDS = ("0", "GPU-5d0f4c1e-8c53-e1a7-9d5f-1b4a6c7e2f90")


def snapshot(sequence: int, joules: float) -> Snapshot:
    samples = (Sample(ENERGY, IDS, joules), Sample(POWER, IDS, 612.5))
    result = CollectorResult("gpu", samples, True, 0.004, 1_795_000_000.0)
    return Snapshot(sequence, 1_795_000_000.0, (result,))


def test_text_format_has_the_values_and_no_created_series() -> None:
    renderer = Renderer([ENERGY, POWER, FAN])
    body, content_type = renderer.render(snapshot(1, 81234567.125))
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'suanli_gpu_energy_joules_total{gpu="0",uuid="' in text
    energy = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "suanli_gpu_energy_joules_total"
    ]
    assert energy == [81234567.125]
    assert "_created" not in text
    assert "suanli_gpu_fan_speed_ratio" not in text, "a family with no sample is left out"
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "suanli_gpu_energy_joules",
        "suanli_gpu_power_watts",
        "suanli_collector_success",
    } <= names


def test_openmetrics_is_negotiated_and_ends_with_eof() -> None:
    renderer = Renderer([ENERGY, POWER])
    body, content_type = renderer.render(snapshot(1, 10.0), "application/openmetrics-text")
    assert content_type.startswith("application/openmetrics-text")
    text = body.decode()
    assert text.endswith("# EOF\n")
    assert "_created" not in text
    assert "# TYPE suanli_gpu_energy_joules counter" in text


def test_gzip_body_is_the_same_exposition() -> None:
    renderer = Renderer([ENERGY, POWER])
    plain, _ = renderer.render(snapshot(1, 10.0))
    zipped, _ = renderer.render(snapshot(1, 10.0), gzipped=True)
    assert gzip.decompress(zipped) == plain


def test_a_snapshot_is_rendered_once_and_a_new_one_replaces_it() -> None:
    renderer = Renderer([ENERGY, POWER])
    first, _ = renderer.render(snapshot(1, 10.0))
    again, _ = renderer.render(snapshot(1, 10.0))
    assert again is first, "the second scrape of a snapshot reuses the rendered bytes"
    newer, _ = renderer.render(snapshot(2, 20.0))
    assert b"20.0" in newer and newer is not first


def test_self_metrics_report_each_collector() -> None:
    failed = CollectorResult("host", (), False, 0.5, None, "OSError: gone")
    snap = Snapshot(3, 1.0, (snapshot(3, 1.0).results[0], failed))
    text = Renderer([ENERGY, POWER]).render(snap)[0].decode()
    assert 'suanli_collector_success{collector="gpu"} 1.0' in text
    assert 'suanli_collector_success{collector="host"} 0.0' in text
    assert 'suanli_collector_last_success_timestamp_seconds{collector="host"}' not in text
    assert "suanli_agent_build_info{" in text
