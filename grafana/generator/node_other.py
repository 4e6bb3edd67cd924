"""6b. Node and GPU detail: every GPU family the agent declares that no panel above charts,
one time series per family, made from the declarations themselves. A metric added to
`agent/collectors/gpu_metrics.py` is on the node dashboard without a hand edit here; give it a
panel of its own above when it deserves a better place."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from agent.collectors.gpu_metrics import FAMILIES
from grafana.generator.node_gpu import NEEDS_DETAIL, per_gpu
from grafana.generator.panels import Json, timeseries

GENERATED = "GPU metric: "  # the title every panel made here starts with
UNITS = {"_bytes": "bytes", "_ratio": "percentunit", "_hertz": "hertz", "_watts": "watt"}


def uncharted_panels(charted_panels: Iterable[Json]) -> list[Json]:
    charted = json.dumps(list(charted_panels))
    panels = []
    for family in FAMILIES:
        spec = family.spec
        if re.search(rf"\b{spec.name}\b", charted):
            continue
        unit = next((u for suffix, u in UNITS.items() if spec.name.endswith(suffix)), "short")
        legend = " ".join(f"{{{{{label}}}}}" for label in spec.labels[2:])
        description = spec.help + (f" {NEEDS_DETAIL}." if spec.detail else "")
        title = f"{GENERATED}{spec.name.removeprefix('suanli_gpu_')}"
        panels.append(timeseries(title, description, unit, per_gpu(spec.name, f" {legend}")))
    return panels
