"""Fixtures for the viewer's browser tests: one live uvicorn server and one headless Chromium per session.

Chromium is Debian's ``chromium`` package driven through Playwright's Python API with ``executable_path``;
Playwright's own browser download is never used. Where Chromium cannot run the tests skip, loudly."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import LiveServer

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "ui"


def _skip_loudly(reason: str) -> None:
    message = f"BROWSER TESTS NOT RUN: {reason} (CI installs Debian's `chromium`; see .ci/run)"
    warnings.warn(message, stacklevel=2)
    print(f"\n!! {message}", file=sys.stderr)
    pytest.skip(message)


def chromium_path() -> str | None:
    return os.environ.get("MESHCTX_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _skip_loudly("the `playwright` Python package is not installed (it is in the dev extra)")
    executable = chromium_path()
    if executable is None:
        _skip_loudly("no `chromium` binary on PATH")
    manager = sync_playwright().start()
    try:
        instance = manager.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=30_000)
    except Error as error:
        manager.stop()
        _skip_loudly(f"chromium at {executable} failed to start: {str(error).splitlines()[0]}")
    yield instance
    instance.close()
    manager.stop()


@pytest.fixture(scope="session")
def ui_server(live_server: LiveServer) -> LiveServer:
    """The run's shared default server (``tests/support/servers.py``)."""
    return live_server


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
