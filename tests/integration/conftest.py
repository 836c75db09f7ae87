"""Fixtures for the scheduler-integration tests: the app on a real uvicorn server (``meshctx serve``)
and in process, behind one ``post`` callable so every test runs against both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from meshctx_service.app import create_app
from tests.support.servers import LiveServer

Post = Callable[..., httpx.Response]


@pytest.fixture(scope="session")
def integration_server(live_server: LiveServer) -> LiveServer:
    """The run's shared default server (``tests/support/servers.py``)."""
    return live_server


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
