"""Run an OpenAI-compatible engine server as a child process on 127.0.0.1: start, health-check, stop.

An engine we start must not outlive crmind: on Linux it gets SIGTERM when its parent dies (even by SIGKILL),
and a pid file beside its log lets the next start find and replace one that was left behind anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
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
        if proc is None or not self.owned:
            return
        if proc.poll() is None:
            _stop_group(proc.pid, timeout_s, proc.wait)
        if self.log_path is not None:
            _pid_path(self.log_path).unlink(missing_ok=True)

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
    # The parent-death signal belongs to the thread that forks; only the main thread lives as long as we do.
    die_with_parent = _pdeathsig_hook() if threading.current_thread() is threading.main_thread() else None
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, **(env or {})},
                                preexec_fn=die_with_parent)
    handle = EngineHandle(engine=engine, base_url=f"http://{host}:{port}/v1", models=models,
                          process=proc, log_path=log_path)
    _write_pid_file(_pid_path(log_path), proc.pid, cmd)
    try:
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
    except BaseException:  # a start that fails or is interrupted (SIGTERM, Ctrl-C) leaves no engine behind
        handle.stop()
        raise
    handle.stop()
    raise EngineStartError(f"The {engine} engine did not answer within {timeout_s:.0f} s:\n{_tail(log_path)}")


_PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    """The C library's ``prctl``, None where there is none (not Linux)."""
    try:
        prctl: Callable[..., int] = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def _die_with(prctl: Callable[..., int], parent: int) -> None:
    """Have Linux SIGTERM this process when ``parent`` dies; exit now if it already has."""
    prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def _pdeathsig_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send the child SIGTERM when we die; None where prctl is missing."""
    prctl = _prctl()  # looked up here: the forked child should only make the call
    if prctl is None:
        return None
    parent = os.getpid()
    return lambda: _die_with(prctl, parent)


def die_with_parent() -> None:
    """The same for this process and its parent (an API worker whose supervisor was SIGKILLed)."""
    prctl = _prctl()
    if prctl is not None:
        _die_with(prctl, os.getppid())


def _stop_group(pid: int, timeout_s: float, wait: Callable[[float], object]) -> None:
    """SIGTERM the process group ``pid`` leads, then SIGKILL it if it is still there after ``timeout_s``."""
    try:
        os.killpg(pid, signal.SIGTERM)
        try:
            wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(pid, signal.SIGKILL)
            wait(timeout_s)
    except ProcessLookupError:
        pass


def _pid_path(log_path: Path) -> Path:
    return log_path.with_suffix(".pid")


def _started(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, from /proc), so a reused pid is not mistaken for ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "alive"  # no /proc: all we can tell is that the pid exists
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]  # a zombie has exited; only its parent's wait is due


def _write_pid_file(path: Path, pid: int, cmd: list[str]) -> None:
    record = {"pid": pid, "started": _started(pid), "owner": os.getpid(), "owner_started": _started(os.getpid()),
              "cmd": cmd}
    path.write_text(json.dumps(record))


def reap_orphan(pid_file: Path, timeout_s: float = 10.0) -> bool:
    """Stop an engine a previous crmind started and left behind (its owner died); True if one was stopped.

    An engine whose owner still runs (another crmind on the same port) is left alone.
    """
    try:
        record = json.loads(pid_file.read_text())
        pid, owner = int(record["pid"]), int(record["owner"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if record.get("owner_started") is not None and _started(owner) == record["owner_started"]:
        return False
    engine_alive = record.get("started") is not None and _started(pid) == record["started"]
    if engine_alive:
        def wait(limit: float) -> None:
            deadline = time.monotonic() + limit
            while _started(pid) == record["started"] and time.monotonic() < deadline:
                time.sleep(0.1)
            if _started(pid) == record["started"]:
                raise subprocess.TimeoutExpired(record["cmd"], limit)

        _stop_group(pid, timeout_s, wait)
    pid_file.unlink(missing_ok=True)
    return engine_alive


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
