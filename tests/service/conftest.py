"""Session fixtures shared by the service tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import LiveServer, start_server


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("live"))
    yield server
    server.stop()
