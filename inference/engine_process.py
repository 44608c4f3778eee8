"""Run an OpenAI-compatible engine server as a child process on 127.0.0.1: start, health-check, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from inference.errors import EngineStartError, PortInUse


@dataclass(kw_only=True)
class EngineHandle:
    """A running engine: where to reach it, and how to stop it (a no-op for engines we did not start)."""

    engine: str
    base_url: str
    models: list[str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    owned: bool = field(default=True)

    def healthy(self) -> bool:
        """Whether the server answers ``/v1/models``."""
        return served_models(self.base_url) is not None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server we started (its whole process group); engines we reused keep running."""
        proc = self.process
        if proc is None or not self.owned or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout_s)

    def __enter__(self) -> EngineHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def port_open(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def served_models(base_url: str, api_key: str = "not-needed", timeout_s: float = 2.0) -> list[str] | None:
    """Model names the server at ``base_url`` (ending in ``/v1``) serves, or None if it does not answer."""
    try:
        resp = httpx.get(f"{base_url.rstrip('/')}/models", timeout=timeout_s,
                         headers={"Authorization": f"Bearer {api_key}"})
        resp.raise_for_status()
        return [m["id"] for m in resp.json()["data"]]
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return None


def reuse_or_refuse(*, engine: str, host: str, port: int, models: list[str]) -> EngineHandle | None:
    """If the port is taken: reuse a healthy engine that serves ``models``, else raise ``PortInUse``."""
    if not port_open(host, port):
        return None
    base_url = f"http://{host}:{port}/v1"
    serving = served_models(base_url)
    if serving is not None and set(models) <= set(serving):
        return EngineHandle(engine=engine, base_url=base_url, models=serving, owned=False)
    what = "an engine serving " + ", ".join(serving) if serving is not None else "something that is no engine"
    raise PortInUse(f"Port {port} on {host} is taken by {what}; stop it or set CRMIND_LLM_PORT elsewhere.")


def spawn(
    *, engine: str, cmd: list[str], host: str, port: int, models: list[str], log_path: Path,
    timeout_s: float, env: dict[str, str] | None = None,
) -> EngineHandle:
    """Start ``cmd`` in its own process group and wait until it serves ``models`` (or fail with its log)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, **(env or {})})
    handle = EngineHandle(engine=engine, base_url=f"http://{host}:{port}/v1", models=models,
                          process=proc, log_path=log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            code = proc.returncode
            raise EngineStartError(f"The {engine} engine exited with code {code}:\n{_tail(log_path)}")
        serving = served_models(handle.base_url, timeout_s=1.0)
        if serving is not None:
            handle.models = serving
            return handle
        time.sleep(0.2)
    handle.stop()
    raise EngineStartError(f"The {engine} engine did not answer within {timeout_s:.0f} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
