"""Fixtures for the scheduler-integration tests: the app on a real uvicorn server (``meshctx serve``)
and in process, behind one ``post`` callable so every test runs against both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from meshctx_service.app import create_app
from tests.support.servers import LiveServer, start_server

Post = Callable[..., httpx.Response]


@pytest.fixture(scope="session")
def integration_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("integration"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def in_process() -> Iterator[httpx.Client]:
    from fastapi.testclient import TestClient

    with TestClient(create_app()) as client:  # runs the lifespan, as uvicorn does
        yield client


@pytest.fixture(params=["uvicorn", "in_process"])
def post(request: pytest.FixtureRequest) -> Iterator[Post]:
    """``post(path, **httpx_kwargs)`` against the live server or the in-process app."""
    if request.param == "uvicorn":
        server: LiveServer = request.getfixturevalue("integration_server")
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            yield lambda path, **kw: client.post(path, **kw)
    else:
        client: Any = request.getfixturevalue("in_process")
        yield lambda path, **kw: client.post(path, **kw)
