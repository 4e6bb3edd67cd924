"""Prometheus text format 0.0.4 and OpenMetrics 1.0.0, for gauge and counter families.

The agent encodes its own exposition instead of importing prometheus_client at run time: that
import pulls in its HTTP servers, urllib and TLS (about 10 MiB of the agent's 30 MiB budget)
for two small encoders. The output is byte-for-byte what prometheus_client's encoders produce
for the same families; tests/test_exposition_format.py holds it to that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.metrics import MetricSpec

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass
class Family:
    spec: MetricSpec
    samples: list[tuple[tuple[str, ...], float]]


def negotiate(accept: str) -> str:
    """OpenMetrics 1.0.0 when the scraper accepts it (as Prometheus does), else text 0.0.4."""
    for media_range in accept.split(","):
        media, *params = (part.strip() for part in media_range.split(";"))
        if media != "application/openmetrics-text":
            continue
        version = next((p.split("=", 1)[1] for p in params if p.startswith("version=")), "")
        if version in ("", "1.0.0"):
            return OPENMETRICS
    return TEXT


def format_value(value: float) -> str:
    """Go's float formatting, as Prometheus and prometheus_client write it."""
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(float(value))
    dot = text.find(".")
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _label_value(value: str) -> str:
    if not isinstance(value, str):  # a hardware answer of the wrong type must not fail a scrape
        value = "" if value is None else str(value)
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _label_order(labels: Sequence[str]) -> list[int]:
    return sorted(range(len(labels)), key=lambda i: labels[i])


def _sample_lines(name: str, family: Family) -> Iterable[str]:
    names = family.spec.labels
    order = _label_order(names)
    for values, value in family.samples:
        if names:
            pairs = ",".join(f'{names[i]}="{_label_value(values[i])}"' for i in order)
            yield f"{name}{{{pairs}}} {format_value(value)}\n"
        else:
            yield f"{name} {format_value(value)}\n"


# A counter named without `_total` (dcgm-exporter's DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION) cannot
# keep its name as an OpenMetrics counter, whose samples must end in `_total`: it is typed
# `unknown` there, keeping the name dashboards query. Text format 0.0.4 keeps `counter`.

# Each family is encoded to bytes on its own and the bytes joined: at 64 GPUs a render then
# holds one family's lines at a time instead of ~4,000 line strings plus their joined copy,
# which lowers the peak the allocator must keep pools for.


def encode_text(families: Iterable[Family]) -> bytes:
    chunks: list[bytes] = []
    for family in families:
        name = family.spec.name
        help_text = family.spec.help.replace("\\", r"\\").replace("\n", r"\n")
        head = f"# HELP {name} {help_text}\n# TYPE {name} {family.spec.kind}\n"
        chunks.append((head + "".join(_sample_lines(name, family))).encode())
    return b"".join(chunks)


def encode_openmetrics(families: Iterable[Family]) -> bytes:
    chunks: list[bytes] = []
    for family in families:
        sample_name, kind = family.spec.name, str(family.spec.kind)
        name = sample_name.removesuffix("_total") if kind == "counter" else sample_name
        if kind == "counter" and name == sample_name:
            kind = "unknown"  # OpenMetrics: a counter's samples end in _total (see below)
        help_text = _label_value(family.spec.help)
        head = f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"
        chunks.append((head + "".join(_sample_lines(sample_name, family))).encode())
    chunks.append(b"# EOF\n")
    return b"".join(chunks)


def encode(content_type: str, families: Iterable[Family]) -> bytes:
    return encode_openmetrics(families) if content_type == OPENMETRICS else encode_text(families)
