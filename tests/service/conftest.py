"""Session fixtures shared by the service tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest
from service_harness import LiveServer, start_server

# The service opens its registry database at start-up: keep every test's (and server subprocess's) out of $HOME.
os.environ.setdefault("MESHCTX_DATA_DIR", tempfile.mkdtemp(prefix="meshctx-service-tests-"))


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("live"))
    yield server
    server.stop()
