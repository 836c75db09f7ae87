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


#: Under pytest-xdist (``./scripts/test`` runs ``-n 2 --dist loadgroup``) each test module runs whole on one worker, so
#: a module's servers start once, as in a serial run; these folders run whole on one worker, as they share one
#: session resource that must not start twice (the Slurm cluster, the browser).
ONE_WORKER_FOLDERS = frozenset({"slurm", "ui"})


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    grouped = config.getoption("dist", "no") == "loadgroup"
    for item in items:
        folder = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
        if grouped:
            group = folder if folder in ONE_WORKER_FOLDERS else item.nodeid.split("::", 1)[0]
            item.add_marker(pytest.mark.xdist_group(group))
        if (
            folder in SLOW_FOLDERS
            or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
            or "postgresql" in item.name
            or _starts_processes(item.path)
        ):
            item.add_marker(pytest.mark.slow)
