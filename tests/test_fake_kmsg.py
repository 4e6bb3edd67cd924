"""The simulated kernel log (suanli_sim/fake_kmsg.py): scenario `sxid` faults become the NVSwitch
driver's SXid lines at their simulated time, parsed back by the agent's own parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.hw.kernel_xid import parse_sxid, parse_xid
from agent.hw.kmsg import parse_record
from suanli_sim.fake_kmsg import FakeKmsg
from suanli_sim.fake_nvml import FakeNvml
from suanli_sim.fake_scenario import ScenarioError, parse_scenario

SCENARIO = """
name: sxids
gpus: {model: H100-SXM5-80GB, count: 8, workload: training}
faults:
  - {kind: sxid, at: 3, switch: 1, link: 48, code: 20034, fatal: true}
  - {kind: sxid, at: 5, switch: 3, link: 4, code: 20009, count: 2}
  - {kind: xid, gpu: 0, at: 4, code: 13}
"""


def texts(path: Path) -> list[str]:
    return [parse_record(line).text for line in path.read_text().splitlines()]


def test_sxid_faults_are_written_in_the_drivers_format_at_their_time(tmp_path: Path) -> None:
    now = [0.0]
    nvml = FakeNvml(parse_scenario(SCENARIO), clock=lambda: now[0])
    log = tmp_path / "kmsg"
    writer = FakeKmsg(nvml, str(log))
    now[0] = 3.5
    writer.sync()
    fatal = texts(log)
    assert fatal[0] == (
        "nvidia-nvswitch1: SXid (PCI:0000:84:00.0): 20034, Fatal, Link 48 LTSSM Fault Up"
    )
    assert len(fatal) == 3  # the Severity and Data lines a fatal SXid is followed by
    now[0] = 10.0
    writer.sync()
    lines = texts(log)
    non_fatal = "nvidia-nvswitch3: SXid (PCI:0000:86:00.0): 20009, Non-fatal, Link 4"
    assert lines[-2:] == [f"{non_fatal} RX Short Error Rate"] * 2
    events = [e for e in map(parse_sxid, lines) if e is not None]
    assert [(e.switch, e.pci, e.sxid, e.fatal, e.link) for e in events] == [
        ("nvidia-nvswitch1", "0000:84:00.0", 20034, True, 48),
        ("nvidia-nvswitch3", "0000:86:00.0", 20009, False, 4),
        ("nvidia-nvswitch3", "0000:86:00.0", 20009, False, 4),
    ]
    assert [x.xid for x in map(parse_xid, lines) if x is not None] == [13]
    # records are numbered in order, whatever kind they are
    seqs = [parse_record(line).seq for line in log.read_text().splitlines()]
    assert seqs == list(range(1, len(seqs) + 1))


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("{kind: sxid, at: 1, switch: 4, code: 20034}", "switch: NVSwitches are 0 to 3"),
        ("{kind: sxid, at: 1, switch: 0}", "code: required for sxid"),
        ("{kind: sxid, at: 1, code: 1, gpu: 0}", "gpu"),
    ],
)
def test_bad_sxid_faults_are_refused(fault: str, message: str) -> None:
    text = f"name: bad\ngpus: {{model: H100-SXM5-80GB}}\nfaults:\n  - {fault}\n"
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(text)
