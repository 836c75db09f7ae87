"""``meshctx serve`` for the HTTP benchmarks: a subprocess on a loopback port with a throwaway registry,
shipped defaults unless told otherwise, stopped on exit."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def meshctx_process(port: int, *args: str, **settings: str) -> Iterator[subprocess.Popen[str]]:
    """The server process once ``/readyz`` answers 200 (``args`` follow ``meshctx serve --port PORT``; ``settings``
    are ``MESHCTX_*`` variables added to the environment)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "service")]))
    env["MESHCTX_DATA_DIR"] = tempfile.mkdtemp(prefix="meshctx-bench-")  # a throwaway registry, not $HOME's
    env.update(settings)
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        command = [sys.executable, "-m", "meshctx.cli", "serve", "--port", str(port), *args]
        server = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise SystemExit(f"meshctx serve did not become ready:\n{log.read()[-3000:]}")
                time.sleep(0.05)
            yield server
        finally:
            server.terminate()
            server.wait(timeout=30)


@contextmanager
def meshctx_server(port: int, *args: str) -> Iterator[str]:
    """The server's URL once ``/readyz`` answers 200 (``args`` follow ``meshctx serve --port PORT``)."""
    with meshctx_process(port, *args):
        yield f"http://127.0.0.1:{port}"
