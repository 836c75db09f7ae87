"""A log reader that stops draining stderr (a paused collector, a full pipe) must not stop the service: the access
log is written by a thread of its own, and lines it cannot hand over are dropped and counted in ``/metrics``."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.env import REPO
from tests.support.servers import LiveServer, free_port, service_env, wait_ready

#: ~250 bytes of log a request: 3,000 fill a 64 kB pipe ten times over (the old log stopped the loop after ~430).
REQUESTS = 3000


@pytest.fixture
def stalled_server(tmp_path: Path) -> Iterator[LiveServer]:
    port = free_port()
    process = subprocess.Popen(  # stderr is a pipe nobody reads
        [sys.executable, "-m", "meshctx.cli", "serve", "--port", str(port), "--log-level", "info"],
        cwd=REPO,
        env=service_env(MESHCTX_DATA_DIR=str(tmp_path / "data")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = LiveServer(process, f"http://127.0.0.1:{port}", tmp_path / "unused.log")
    server.log.write_text("")
    try:
        wait_ready(server)
        yield server
    finally:
        process.kill()
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()


def _dropped(client: httpx.Client) -> float:
    found = re.search(r"^meshctx_access_log_dropped_lines_total ([0-9.e+]+)$", client.get("/metrics").text, re.M)
    assert found is not None
    return float(found.group(1))


def test_a_stderr_pipe_never_read_does_not_stop_livez(stalled_server: LiveServer) -> None:
    """Past the pipe's 64 kB and the writer's queue (16 batches of up to a quarter second each), lines are
    dropped and counted; ``/livez`` answers every time (the old log stopped the loop after ~430 requests)."""
    sent, started = 0, time.monotonic()
    with httpx.Client(base_url=stalled_server.url, timeout=5.0) as client:
        while sent < REQUESTS or (_dropped(client) == 0 and time.monotonic() - started < 60):
            for _ in range(500):
                assert client.get("/livez").status_code == 200
            sent += 500
        assert _dropped(client) > 0, "the stalled log's lines were not counted as dropped"
