"""Architecture rules the code must keep: one module imports pynvml, library code never exits."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AGENT = ROOT / "agent"
SIMULATOR = ROOT / "suanli_sim"


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


def test_nobody_gets_pynvml_from_the_gateway() -> None:
    import agent.hw.nvml as gateway

    assert "pynvml" not in gateway.__all__
    for path in [*AGENT.rglob("*.py"), *SIMULATOR.rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "agent.hw.nvml":
                assert "pynvml" not in {a.name for a in node.names}, path


def test_the_daemon_never_imports_the_simulator() -> None:
    """Two houses: `suanli_sim` imports `agent`, never the other way; the daemon finds the
    simulator only through its entry point (`agent.simulator`)."""
    outside = ("suanli_sim", "benchmarks", "tests", "grafana")
    for path in AGENT.rglob("*.py"):
        wrong = {m for m in imported_modules(path) if m.split(".")[0] in outside}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_the_simulator_has_one_door_to_the_binding() -> None:
    importers = {
        str(p.relative_to(SIMULATOR))
        for p in SIMULATOR.rglob("*.py")
        if "pynvml" in imported_modules(p)
    }
    assert importers == {"binding.py"}


def test_the_daemon_installs_without_the_simulator_inside_it() -> None:
    """No simulator module or scenario file is left in the daemon's package."""
    leftovers = [p for p in AGENT.rglob("*") if p.name.startswith("fake_") or p.suffix == ".yaml"]
    assert leftovers == []
    assert not (AGENT / "simulate").exists()


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


def runtime_imports(path: Path) -> set[str]:
    """Modules `path` imports when it runs (imports under `if TYPE_CHECKING:` left out)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[1:2] in (["hw"], ["collectors"]) else "agent.<root>"


def test_hardware_access_and_collectors_import_downward_only() -> None:
    """hw never imports collectors or the wiring; no collector imports the configuration, the
    sampler or the CLI: the config schema is assembled from the collectors, not the other way."""
    upward = {
        "agent.hw": ("agent.collectors", "agent.config", "agent.app", "agent.cli", "agent.sampler"),
        "agent.collectors": ("agent.config", "agent.app", "agent.cli", "agent.sampler"),
    }
    for path in AGENT.rglob("*.py"):
        module = "agent." + ".".join(path.relative_to(AGENT).with_suffix("").parts)
        forbidden = upward.get(_layer(module), ())
        wrong = {m for m in runtime_imports(path) if m.startswith(forbidden)}
        assert not wrong, f"{module} imports {sorted(wrong)}"


def test_the_daemon_never_imports_grpc_or_protobuf() -> None:
    """The kubelet is read by hand (agent/hw/grpc_unary.py, podresources_wire.py): grpcio and
    protobuf would cost about 18 MiB resident on every Kubernetes node."""
    heavy = ("grpc", "google", "h2", "hpack")
    for path in AGENT.rglob("*.py"):
        wrong = {m for m in imported_modules(path) if m.split(".")[0] in heavy}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"
