"""``meshctx serve``: run the service under uvicorn (the ``service`` extra)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .common import EXIT_VALID, UsageError, load_service


def add_serve_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the validation service (settings also from MESHCTX_* env vars)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000)")
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default 1)")
    serve.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service; flags override ``MESHCTX_*`` settings (workers read them from the env)."""
    service = load_service("serve")
    assert service.run_server is not None
    for name in ("host", "port", "workers", "log_level"):
        if getattr(args, name) is not None:
            os.environ[f"MESHCTX_{name.upper()}"] = str(getattr(args, name))
    try:
        settings = service.settings()
    except ValueError as error:  # pydantic's ValidationError: a bad MESHCTX_* setting
        raise UsageError(str(error)) from None
    service.run_server(
        "meshctx_service.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,  # the service writes its own JSON access log
        ssl_certfile=settings.tls_cert_file,  # HTTPS when MESHCTX_TLS_CERT_FILE is set
        ssl_keyfile=settings.tls_key_file,
    )
    return EXIT_VALID
