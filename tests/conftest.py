"""Every test, and every server a test starts, keeps its registry database out of $HOME; fixtures shared by
several directories are registered here, once, from ``tests/support``."""

from __future__ import annotations

import functools
import os
import re
import tempfile
from pathlib import Path

import pytest

from tests.support.postgres import postgres_admin_url  # noqa: F401  (one PostgreSQL server per test run)
from tests.support.servers import live_server  # noqa: F401  (one default live server per test run)

os.environ.setdefault("MESHCTX_DATA_DIR", tempfile.mkdtemp(prefix="meshctx-tests-"))


#: The fast tier (``./scripts/test --fast``, ``pytest -m "not slow"``) leaves out what starts servers, other
#: processes or databases: these folders (torch worlds, NeMo, Slurm, SkyPilot, the browser, live servers, docs
#: walkthroughs, shipped deployments), tests using one of these fixtures, tests on PostgreSQL, and test modules
#: that start a server or processes themselves (their text says so: ``SLOW_TEXT``).
SLOW_FOLDERS = frozenset({"torch", "nemo", "slurm", "skypilot", "ui", "integration", "registry_http", "docs", "deploy"})
SLOW_FIXTURES = frozenset(
    {"live_server", "integration_server", "server", "serve", "ui_server", "postgres_admin_url", "slurm_cluster"}
)
SLOW_TEXT = re.compile(r"start_server\(|meshctx_serve\(|bare_python|Popen\(|multiprocessing|get_context\(")


@functools.cache
def _starts_processes(path: Path) -> bool:
    return SLOW_TEXT.search(path.read_text()) is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
        if (
            folder in SLOW_FOLDERS
            or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
            or "postgresql" in item.name
            or _starts_processes(item.path)
        ):
            item.add_marker(pytest.mark.slow)
