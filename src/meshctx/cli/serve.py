"""``meshctx serve``: run the service under uvicorn (the ``service`` extra)."""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

from .common import EXIT_VALID, UsageError, load_service


def add_serve_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the validation service (settings also from MESHCTX_* env vars)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000)")
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default 1)")
    serve.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), help="default info")
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
    if service.load_tokens is not None:
        try:  # a malformed token file stops serve with its message here, not in uvicorn's factory call
            service.load_tokens(settings)
        except ValueError as error:
            raise UsageError(str(error)) from None
    _check_port_free(settings.host, settings.port)
    service.run_server(
        "meshctx_service.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        http=service.http_protocol,  # uvicorn's httptools protocol, a response sent in one write (http/protocol.py)
        access_log=False,  # the service writes its own JSON access log
        ssl_certfile=settings.tls_cert_file,  # HTTPS when MESHCTX_TLS_CERT_FILE is set
        ssl_keyfile=settings.tls_key_file,
    )
    return EXIT_VALID


def _check_port_free(host: str, port: int) -> None:
    """A busy or forbidden address is a usage error (exit 2) naming the fix, not uvicorn's start-up failure."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}; check --host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise UsageError(
                f"cannot listen on {host}:{port}: {error.strerror}; another process may be using the port — "
                "choose another with --port (or MESHCTX_PORT)"
            ) from None
