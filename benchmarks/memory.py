"""Where the agent's resident memory goes at start: RSS after each import, in a new interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.machine import ROOT

AGENT_ENTRY = ("agent.cli", "agent.app", "agent.runner")  # what `python -m agent` loads
FAKE = ("suanli_sim.fake_nvml",)  # loaded by `--fake` only

_DISCOVER = """
import importlib, json, sys
def tops():
    return {m.partition(".")[0] for m in sys.modules}
before = tops()
for name in sys.argv[1:]:
    importlib.import_module(name)
new = tops() - before - set(sys.stdlib_module_names) - {"agent"}
print(json.dumps(sorted(t for t in new if getattr(sys.modules[t], "__spec__", None))))
"""

_PROBE = """
import importlib, json, sys
def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
out = []
for label, modules in json.loads(sys.argv[1]):
    for name in modules:
        importlib.import_module(name)
    out.append([label, rss()])
print(json.dumps(out))
"""


def _python(code: str, *args: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def third_party() -> list[str]:
    """Top-level non-stdlib packages the agent's entry modules import."""
    found = _python(_DISCOVER, *AGENT_ENTRY)
    return [str(name) for name in found] if isinstance(found, list) else []


def steps() -> list[tuple[str, tuple[str, ...]]]:
    out: list[tuple[str, tuple[str, ...]]] = [("Python interpreter", ())]
    out += [(name, (name,)) for name in third_party()]
    out.append(("agent code and the stdlib modules it loads", AGENT_ENTRY))
    out.append(("fake NVML (`--fake` only)", FAKE))
    return out


def import_rss() -> list[tuple[str, float, float]]:
    """(step, RSS MiB after it, MiB it added), measured in a new `python` process."""
    measured = _python(_PROBE, json.dumps(steps()))
    out, previous = [], 0.0
    for label, rss in measured if isinstance(measured, list) else []:
        out.append((str(label), float(rss), float(rss) - previous))
        previous = float(rss)
    return out
