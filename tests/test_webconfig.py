"""`--web-config`: the exporter-toolkit format, TLS, mutual TLS, basic auth and slow clients.

Certificates are made per session with the `openssl` command (skipped when it is missing); the
agent runs as a real process on 127.0.0.1 (see conftest.py). Every wait is bounded.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import bcrypt
import pytest
import yaml

from agent import webconfig
from agent.basicauth import BasicAuth
from agent.config import ConfigError
from agent.exposition import Renderer
from agent.server import AgentState, Limits, listen, serve_in_thread

if TYPE_CHECKING:
    from conftest import AgentProcess

StartAgent = Callable[..., "AgentProcess"]
RunAgent = Callable[..., "subprocess.CompletedProcess[str]"]

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "deploy" / "web-config.example.yml"
EXAMPLE_PASSWORD = "suanli-example-only"  # documented in the example file


# --- certificates ----------------------------------------------------------------------------


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def _leaf(pki: Path, name: str, san: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(pki / f"{name}.key"), "-out", str(pki / f"{name}.crt"), "-days", "2",
        "-subj", f"/CN={name}", "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
        "-addext", f"subjectAltName={san}", "-addext", "basicConstraints=critical,CA:FALSE",
    )  # fmt: skip


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.crt, server.crt/key (127.0.0.1, localhost), client.crt/key (scraper.example)."""
    if shutil.which("openssl") is None:
        if os.environ.get("SUANLI_REQUIRE_OPENSSL", "") == "1":
            pytest.fail("the openssl command is missing, and SUANLI_REQUIRE_OPENSSL=1 is set")
        pytest.skip("the openssl command is not installed")
    pki = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"), "-days", "2",
        "-subj", "/CN=suanli test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _leaf(pki, "server", "IP:127.0.0.1,DNS:localhost")
    _leaf(pki, "client", "DNS:scraper.example")
    return pki


def client_context(pki: Path, with_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if with_cert:
        context.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    return context


def write(directory: Path, text: str, name: str = "web.yml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


# --- clients ---------------------------------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def get(
    port: int,
    path: str = "/metrics",
    context: ssl.SSLContext | None = None,
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection (HTTPS with `context`); status, headers, body."""
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    else:
        conn = http.client.HTTPSConnection(LOOPBACK, port, timeout=5, context=context)
    try:
        conn.request(method, path, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture
def start(agent_process: StartAgent) -> Callable[..., AgentProcess]:
    """Start the agent with a web config; wait until it answers over `context` (or HTTP), or
    with `listening_only` until its port accepts connections."""

    def ready(port: int, context: ssl.SSLContext | None, listening_only: bool) -> None:
        if listening_only:
            socket.create_connection((LOOPBACK, port), timeout=1).close()
        else:
            get(port, "/healthz", context)

    def run(
        config: Path, context: ssl.SSLContext | None = None, listening_only: bool = False
    ) -> AgentProcess:
        agent = agent_process("--web-config", str(config), wait=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and agent.proc.poll() is None:
            try:
                ready(agent.port, context, listening_only)
                return agent
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"agent not serving; stderr:\n{agent.stderr()}", pytrace=False)

    return run


# --- the format ------------------------------------------------------------------------------

BAD = [
    ("bogus: 1\n", "bogus: unknown key"),
    ("rate_limit: {interval: 1s, burst: 2}\n", "rate_limit: not supported"),
    ("tls_server_config: {cert_file: nope.crt, key_file: server.key}\n",
     'tls_server_config.cert_file: cannot read "'),
    ("tls_server_config: {cert_file: server.crt}\n", "tls_server_config.key_file: required"),
    ("tls_server_config: {cert_file: server.crt, key_file: client.key}\n",
     "tls_server_config.key_file: not a PEM key that matches"),
    ("tls_server_config: {cert_file: server.crt, key_file: server.key, min_version: TLS14}\n",
     "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13"),
    ("tls_server_config: {cert_file: server.crt, key_file: server.key, min_version: TLS10}\n",
     "tls_server_config.min_version: TLS10 is below TLS12 and refused"),
    ("tls_server_config: {cert_file: server.crt, key_file: server.key, min_version: TLS11}\n",
     "tls_server_config.min_version: TLS11 is below TLS12 and refused"),
    ("tls_server_config: {cert_file: server.crt, key_file: server.key, min_version: TLS13,"
     " max_version: TLS12}\n", "tls_server_config.min_version: TLS13 is above max_version"),
    ("tls_server_config: {cert_file: server.crt, key_file: server.key,"
     " client_auth_type: RequireAndVerifyClientCert}\n",
     "tls_server_config.client_ca_file: required with client_auth_type"),
    ("tls_server_config: {cert_file: server.crt, key_file: server.key,"
     " client_auth_type: Sometimes}\n", "tls_server_config.client_auth_type: must be one of"),
    ("tls_server_config: {cert_file: server.crt, key_file: server.key,"
     " cipher_suites: [TLS_FAST]}\n", "tls_server_config.cipher_suites: must be one of"),
    ("tls_server_config: {cert_file: server.crt, key_file: server.key, colour: blue}\n",
     "tls_server_config.colour: unknown key"),
    ("http_server_config: {headers: {X-Powered-By: me}}\n",
     "http_server_config.headers.X-Powered-By: not a header"),
    ("http_server_config: {http2: maybe}\n", "http_server_config.http2: must be true or false"),
    ("basic_auth_users: {alice: hunter2}\n", "basic_auth_users.alice: must be a bcrypt hash"),
    ("basic_auth_users: [alice]\n", "basic_auth_users: must be a mapping"),
    ("tls_server_config: [\n", "not valid YAML"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[e for _, e in BAD])
def test_each_problem_is_one_line_naming_its_yaml_path(pki: Path, text: str, expected: str) -> None:
    path = write(pki, text, "bad.yml")
    with pytest.raises(ConfigError) as caught:
        webconfig.load(path)
    assert len(caught.value.problems) == 1, caught.value.problems
    assert caught.value.problems[0].startswith(f"{path}: ")
    assert expected in caught.value.problems[0]


def test_a_complete_config_parses_with_paths_relative_to_its_file(pki: Path) -> None:
    path = write(
        pki,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
        "  client_allowed_sans: [scraper.example]\n  min_version: TLS13\n"
        "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n"
        "  prefer_server_cipher_suites: false\n  curve_preferences: [X25519]\n"
        "http_server_config:\n  http2: false\n  headers: {X-Frame-Options: deny}\n"
        f"basic_auth_users:\n  alice: {bcrypt.hashpw(b'pw', bcrypt.gensalt(4)).decode()}\n",
    )
    config = webconfig.load(path)
    assert config.tls is not None and config.tls.cert_file == str(pki / "server.crt")
    assert config.context.verify_mode == ssl.CERT_REQUIRED
    assert config.context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert config.headers == (("X-Frame-Options", "deny"),)
    assert list(config.users) == ["alice"]
    assert any("curve_preferences is ignored" in w for w in config.warnings)


def test_inline_pem_certificate_key_and_client_ca_load(pki: Path, tmp_path: Path) -> None:
    section = {
        "cert": (pki / "server.crt").read_text(),
        "key": (pki / "server.key").read_text(),
        "client_ca": (pki / "ca.crt").read_text(),
        "client_auth_type": "VerifyClientCertIfGiven",
    }
    config = webconfig.load(write(tmp_path, yaml.safe_dump({"tls_server_config": section})))
    assert config.context.verify_mode == ssl.CERT_OPTIONAL


def test_an_empty_file_or_empty_tls_section_serves_plain_http(tmp_path: Path) -> None:
    assert webconfig.load(write(tmp_path, "")).context is None
    assert webconfig.load(write(tmp_path, "tls_server_config: {}\n")).context is None


def test_cli_bad_web_config_exits_2_with_one_line(run_agent: RunAgent, tmp_path: Path) -> None:
    write(tmp_path, "basic_auth_users: {alice: plain}\n")
    result = run_agent("--web-config", "web.yml", "--check-config")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("suanli-agent: web-config: web.yml: basic_auth_users.alice: ")
    assert "bcrypt hash" in lines[0]


def test_cli_check_config_loads_certificates_relative_to_the_file(
    run_agent: RunAgent, pki: Path
) -> None:
    config = write(pki, "tls_server_config: {cert_file: server.crt, key_file: server.key}\n")
    result = run_agent("--web-config", str(config), "--check-config")  # cwd is elsewhere
    assert result.returncode == 0, result.stderr
    assert "web config" in result.stdout
    assert "--web-config" in run_agent("--help").stdout


def test_basic_auth_alone_does_not_load_openssl(tmp_path: Path) -> None:
    write(tmp_path, f"basic_auth_users: {{a: {bcrypt.hashpw(b'x', bcrypt.gensalt(4)).decode()}}}\n")
    probe = (
        "import sys, agent.cli, agent.cli_flags, agent.runner;"
        "a = agent.cli_flags.parser().parse_args(['--web-config', 'web.yml']);"
        "assert agent.cli.load_web_config(a) is not None; print('ssl' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert out.stdout.strip() == "False"


# --- basic auth ------------------------------------------------------------------------------


def test_bcrypt_runs_once_per_good_password_and_always_for_bad_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = BasicAuth({"alice": bcrypt.hashpw(b"right", bcrypt.gensalt(4))})
    calls: list[bytes] = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda p, h: calls.append(p) or real(p, h))
    assert [auth.check(basic("alice", "right")["Authorization"]) for _ in range(3)] == [True] * 3
    assert len(calls) == 1
    assert not auth.check(basic("alice", "wrong")["Authorization"])
    assert not auth.check(basic("mallory", "right")["Authorization"])  # a dummy hash is checked
    assert len(calls) == 3
    for header in (None, "", "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"a").decode()):
        assert not auth.check(header)
    assert not auth.check(basic("alice", "x" * 100)["Authorization"])  # over bcrypt's 72 bytes


def test_basic_auth_guards_every_path_with_401(
    start: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    config = write(
        tmp_path,
        f"basic_auth_users: {{prometheus: '{hashed}'}}\n"
        "http_server_config: {headers: {X-Content-Type-Options: nosniff}}\n",
    )
    agent = start(config)
    wrong = [{}, basic("prometheus", "guess"), basic("root", "s3cret"), {"Authorization": "Basic"}]
    for headers in wrong:
        for path in ("/metrics", "/healthz", "/"):
            status, got, body = get(agent.port, path, headers=headers)
            assert status == 401, (path, headers)
            assert got["www-authenticate"] == "Basic"
            assert b"suanli_" not in body and b"<a href" not in body
    assert get(agent.port, "/metrics", method="HEAD")[0] == 401
    status, got, body = get(agent.port, "/metrics", headers=basic("prometheus", "s3cret"))
    assert status == 200 and b"suanli_cpu_seconds_total" in body
    assert got["x-content-type-options"] == "nosniff"


# --- TLS -------------------------------------------------------------------------------------


def test_tls_serves_metrics_verified_against_the_ca(
    start: Callable[..., AgentProcess], pki: Path
) -> None:
    config = write(pki, "tls_server_config: {cert_file: server.crt, key_file: server.key}\n")
    context = client_context(pki)
    agent = start(config, context)
    timings = []
    for _ in range(20):
        began = time.perf_counter()
        status, _, body = get(agent.port, "/metrics", context)
        timings.append(time.perf_counter() - began)
        assert status == 200 and b"suanli_cpu_seconds_total" in body
    print(f"TLS scrape (new connection each): median {sorted(timings)[10] * 1000:.1f} ms")
    with pytest.raises((OSError, http.client.HTTPException)):
        get(agent.port, "/metrics")  # plain HTTP on the TLS port gets nothing
    assert "over TLS" in agent.stderr()


def test_mutual_tls_rejects_clients_without_an_allowed_certificate(
    start: Callable[..., AgentProcess], pki: Path
) -> None:
    config = write(
        pki,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
        "  client_allowed_sans: [scraper.example]\n",
        "mtls.yml",
    )
    with_cert = client_context(pki, with_cert=True)
    agent = start(config, with_cert)
    assert get(agent.port, "/metrics", with_cert)[0] == 200
    with pytest.raises((OSError, http.client.HTTPException)):
        get(agent.port, "/metrics", client_context(pki))


def test_a_client_certificate_with_another_san_is_refused(
    start: Callable[..., AgentProcess], pki: Path
) -> None:
    config = write(
        pki,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
        "  client_allowed_sans: [other.example]\n",
        "mtls-san.yml",
    )
    agent = start(config, listening_only=True)
    with pytest.raises((OSError, http.client.HTTPException)):
        get(agent.port, "/metrics", client_context(pki, with_cert=True))


# --- slow and idle clients -------------------------------------------------------------------


def test_the_handshake_has_a_deadline(pki: Path) -> None:
    """A ClientHello that never finishes is closed at the first-request deadline, and the loop
    serves another client meanwhile."""
    config = webconfig.load(
        write(pki, "tls_server_config: {cert_file: server.crt, key_file: server.key}\n")
    )
    state = AgentState(Renderer([]), lambda: None, lambda: (True, "ok"))
    server = listen((LOOPBACK, 0), state, config, Limits(first_request_s=0.3))
    serve_in_thread(server)
    try:
        with socket.create_connection(server.server_address[:2], timeout=5) as client:
            client.sendall(b"\x16\x03\x01")  # a ClientHello that never finishes
            began = time.monotonic()
            with contextlib.suppress(ConnectionResetError):
                assert client.recv(100) == b""  # closed
            assert 0.25 < time.monotonic() - began < 2.0
        assert server.stats.evicted["slow"] == 1
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tls_agent(start: Callable[..., AgentProcess], pki: Path) -> Iterator[AgentProcess]:
    config = write(pki, "tls_server_config: {cert_file: server.crt, key_file: server.key}\n")
    yield start(config, client_context(pki))


def test_idle_connections_never_block_a_tls_scrape(tls_agent: AgentProcess, pki: Path) -> None:
    idle = [socket.create_connection((LOOPBACK, tls_agent.port), timeout=5) for _ in range(5)]
    partial = socket.create_connection((LOOPBACK, tls_agent.port), timeout=5)
    partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
    try:
        for _ in range(5):
            began = time.monotonic()
            assert get(tls_agent.port, "/metrics", client_context(pki))[0] == 200
            assert time.monotonic() - began < 1.0
    finally:
        for sock in [*idle, partial]:
            sock.close()


def test_a_request_sent_byte_by_byte_never_blocks_other_scrapes(
    tls_agent: AgentProcess, pki: Path
) -> None:
    context = client_context(pki)
    raw = socket.create_connection((LOOPBACK, tls_agent.port), timeout=5)
    slow = context.wrap_socket(raw, server_hostname=LOOPBACK)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    done = threading.Event()

    def drip() -> None:
        for byte in request:
            slow.sendall(bytes([byte]))
            time.sleep(0.03)
        done.set()

    sender = threading.Thread(target=drip, daemon=True)
    sender.start()
    try:
        scrapes = 0
        while not done.is_set():
            began = time.monotonic()
            assert get(tls_agent.port, "/metrics", context)[0] == 200
            assert time.monotonic() - began < 1.0
            scrapes += 1
        assert scrapes >= 3
        sender.join(5)
        assert slow.recv(4096).startswith(b"HTTP/1.1 200")  # the slow one is served too
    finally:
        slow.close()


# --- the shipped example ---------------------------------------------------------------------


@pytest.fixture
def example(pki: Path, tmp_path: Path) -> Path:
    """The shipped example, next to a certificate and key under the names it gives."""
    copy = tmp_path / "web-config.yml"
    shutil.copy(EXAMPLE, copy)
    shutil.copy(pki / "server.crt", tmp_path / "suanli-agent.crt")
    shutil.copy(pki / "server.key", tmp_path / "suanli-agent.key")
    return copy


def test_promtool_accepts_the_shipped_example(promtool: str, example: Path) -> None:
    result = subprocess.run(
        [promtool, "check", "web-config", str(example)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shipped_example_serves_with_its_documented_password(
    start: Callable[..., AgentProcess], example: Path, pki: Path
) -> None:
    context = client_context(pki)
    agent = start(example, context)
    assert get(agent.port, "/metrics", context)[0] == 401
    status, _, body = get(agent.port, "/metrics", context, basic("prometheus", EXAMPLE_PASSWORD))
    assert status == 200 and b"suanli_cpu_seconds_total" in body
