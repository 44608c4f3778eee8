"""``crmind serve`` stops cleanly on SIGTERM and SIGINT, and never leaks the model engine it started."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from inference.engine_process import free_port, port_open, reap_orphan
from tests.fixtures.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    llm_port = free_port()
    proc = ServerProcess(port=free_port(), llm=True, log_path=tmp_path / "serve.log", env={
        "CRMIND_DATA_DIR": str(tmp_path / "data"), "CRMIND_DATABASE_URL": f"sqlite:///{tmp_path}/crm.db",
        "CRMIND_LLM_PORT": str(llm_port), "CRMIND_LLM_THREADS": "1",
        "CRMIND_LLM_MODEL": "smollm2"})  # the process lifecycle is under test, not the model: the smallest one
    yield proc.start()
    proc.kill()


def _engine(server: ServerProcess) -> psutil.Process:
    (pid_file,) = (Path(server.env["CRMIND_DATA_DIR"]) / "engines").glob("llamacpp-*.pid")
    engine = psutil.Process(json.loads(pid_file.read_text())["pid"])
    assert engine.ppid() == server.pid
    return engine


def _gone(procs: list[psutil.Process], timeout_s: float = 60.0) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    return alive


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_stop_the_server_its_follower_and_its_engine(
        server: ServerProcess, sig: int, code: int) -> None:
    engine = _engine(server)
    children = psutil.Process(server.pid).children(recursive=True)
    assert engine in children
    server.signal(sig)
    assert server.wait(timeout_s=60) == code
    assert _gone(children) == [], server.tail()
    assert "Application shutdown complete" in server.tail()  # the lifespan (index follower) stopped


def test_a_killed_server_takes_its_engine_with_it_and_the_next_start_replaces_a_leftover(
        server: ServerProcess) -> None:
    engine = _engine(server)
    server.kill()
    assert _gone([engine]) == []  # the engine got its parent-death signal
    restarted = ServerProcess(port=server.port, llm=True, env=server.env, log_path=server.log_path)
    try:
        assert _engine(restarted.start()).is_running()
        restarted.signal(signal.SIGTERM)
        restarted.wait()
    finally:
        restarted.kill()


FAKE_ENGINE = """
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"data": [{"id": "smollm2"}]}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _leftover_engine(tmp_path: Path, owner: int, owner_started: str | None) -> tuple[subprocess.Popen[bytes], Path]:
    """An engine that some crmind process (``owner``) started, as its pid file records it."""
    from inference.engine_process import _started

    port = free_port()
    fake = subprocess.Popen([sys.executable, "-c", FAKE_ENGINE, str(port)], start_new_session=True)
    deadline = time.monotonic() + 30
    while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid_file = tmp_path / f"llamacpp-{port}.pid"
    pid_file.write_text(json.dumps({"pid": fake.pid, "started": _started(fake.pid), "owner": owner,
                                    "owner_started": owner_started, "cmd": ["fake"]}))
    return fake, pid_file


def test_an_engine_whose_owner_died_is_reaped_and_one_whose_owner_lives_is_not(tmp_path: Path) -> None:
    from inference.engine_process import _started

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    fake, pid_file = _leftover_engine(tmp_path, dead.pid, "1")
    assert reap_orphan(pid_file)
    assert fake.wait(timeout=30) is not None and not pid_file.exists()

    fake, pid_file = _leftover_engine(tmp_path, psutil.Process().pid, _started(psutil.Process().pid))
    try:
        assert not reap_orphan(pid_file)
        assert fake.poll() is None
    finally:
        fake.kill()
        fake.wait()
