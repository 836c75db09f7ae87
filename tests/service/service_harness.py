"""Moved to ``tests/support/servers.py``; this name stays for tests written before the move."""

from tests.support.servers import (  # noqa: F401
    REPO,
    STARTUP_TIMEOUT_S,
    LiveServer,
    free_port,
    imported_modules,
    service_env,
    start_server,
    wait_ready,
)
