"""Every test, and every server a test starts, keeps its registry database out of $HOME; fixtures shared by
several directories are registered here, once, from ``tests/support``."""

from __future__ import annotations

import os
import tempfile

from tests.support.postgres import postgres_admin_url  # noqa: F401  (one PostgreSQL server per test run)
from tests.support.servers import live_server  # noqa: F401  (one default live server per test run)

os.environ.setdefault("MESHCTX_DATA_DIR", tempfile.mkdtemp(prefix="meshctx-tests-"))
