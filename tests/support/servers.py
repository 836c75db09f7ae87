"""A real uvicorn server on a free loopback port, started through ``meshctx serve`` in a subprocess with its own
data directory and environment, a bounded wait for ``/readyz``, and a stop that returns its log."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.env import REPO, checkout_env

#: A liveness bound, not a speed target: on a shared 2-core machine under load a start took up to 40 s.
STARTUP_TIMEOUT_S = 90.0


def service_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess that must import *this* worktree's ``meshctx`` and service."""
    return checkout_env(**extra)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A server subprocess; ``stop()`` returns what it wrote to stderr (JSON access log, import trace)."""

    process: subprocess.Popen[str]
    url: str
    log: Path
    stopped: bool = field(default=False)

    def stop(self) -> str:
        if not self.stopped:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.stopped = True
        return self.log.read_text()


def start_server(
    tmp: Path, *, port: int | None = None, args: tuple[str, ...] = (), wait: bool = True, **env: str
) -> LiveServer:
    """``python -X importtime -m meshctx.cli serve`` (``args`` replace the command after the interpreter flags)."""
    port = port if port is not None else free_port()
    env.setdefault("MESHCTX_DATA_DIR", str(tmp / f"data-{port}"))  # its own empty registry unless told
    log = tmp / f"server-{port}.log"
    command = args or ("-m", "meshctx.cli", "serve", "--port", str(port), "--log-level", "info")
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-X", "importtime", *command],
            cwd=REPO,
            env=service_env(**env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", log)
    if wait:
        wait_ready(server)
    return server


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One default server for the whole run (loopback, no tokens, its own empty registry), shared by the
    service, integration and viewer tests: whatever they register keeps to names of their own."""
    server = start_server(tmp_path_factory.mktemp("live"))
    yield server
    server.stop()


def wait_ready(server: LiveServer, timeout: float = STARTUP_TIMEOUT_S) -> float:
    """Poll ``/readyz`` until it answers 200; seconds waited. Fails (and stops the server) on timeout or exit."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if server.process.poll() is not None:
            pytest.fail(f"server exited with {server.process.returncode}:\n{server.stop()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1.0).status_code == 200:
                return time.monotonic() - start
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    output = server.stop()
    pytest.fail(f"server not ready after {timeout} s:\n{output[-3000:]}")


def imported_modules(importtime_log: str) -> set[str]:
    """Top-level names of every module imported, from ``-X importtime`` lines ``import time: … | … | name``."""
    names = set()
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names
