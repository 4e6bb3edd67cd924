"""Architecture rules the code must keep: one module imports pynvml, library code never exits."""

from __future__ import annotations

import ast
from pathlib import Path

AGENT = Path(__file__).resolve().parent.parent / "agent"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_nvml_gateway_imports_pynvml() -> None:
    importers = {
        str(p.relative_to(AGENT)) for p in AGENT.rglob("*.py") if "pynvml" in imported_modules(p)
    }
    assert importers == {"hw/nvml.py"}


def test_collectors_never_touch_the_binding() -> None:
    for path in (AGENT / "collectors").glob("*.py"):
        assert "pynvml" not in path.read_text(), path


def test_only_the_cli_exits() -> None:
    for path in AGENT.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py", "reference.py"):
            continue
        text = path.read_text()
        assert "sys.exit" not in text and "raise SystemExit" not in text, path


def test_serving_loads_neither_prometheus_client_nor_openssl() -> None:
    """Both cost resident memory the agent does not need (see exposition_format, server)."""
    import subprocess
    import sys

    probe = (
        "import sys, agent.cli, agent.app, agent.runner;"
        "print(sorted(m for m in ('ssl', 'prometheus_client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
