"""The CLI tests' view of the shared harness: a real ``meshctx serve`` on loopback with its own data directory,
and the environment of a child process that imports this checkout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.env import checkout_env as cli_env
from tests.support.servers import free_port, start_server

__all__ = ["cli_env", "free_port", "meshctx_serve"]


@contextmanager
def meshctx_serve(data_dir: Path) -> Iterator[str]:
    """``meshctx serve`` on a free loopback port storing its registry in ``data_dir``; yields its URL once ready."""
    server = start_server(data_dir, MESHCTX_DATA_DIR=str(data_dir))
    try:
        yield server.url
    finally:
        server.stop()
