"""Whatever a configuration file holds, loading it gives a config or one line per problem."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import Config, ConfigError, load

KEYS = st.sampled_from(
    [
        "listen_address",
        "interval",
        "backend",
        "log",
        "level",
        "format",
        "topology",
        "rack",
        "collectors",
        "gpu",
        "host",
        "jobs",
        "power",
        "detail",
        "enabled",
        "xid_window",
        "critical_xids",
        "procfs",
        "retention",
        "per_process_limit",
        "nonsense",
        "",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["5s", "-5s", "500ms", ":9445", "json", "1h"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


def check(path: Path) -> None:
    try:
        assert isinstance(load(path), Config)
    except ConfigError as err:
        assert err.problems
        for problem in err.problems:
            assert "\n" not in problem and problem.startswith(str(path))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=st.dictionaries(KEYS, VALUES, max_size=6))
def test_any_yaml_document_is_a_config_or_one_line_problems(tmp_path: Path, document: dict) -> None:  # type: ignore[type-arg]
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(document))
    check(path)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_any_text_is_a_config_or_one_line_problems(tmp_path: Path, text: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    check(path)
