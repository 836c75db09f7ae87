"""The ``meshctx`` command line: one module a command, sharing ``common``.

``validate`` and ``layout`` work offline or against a service (``--server URL``, same output), ``render`` writes
launcher settings, ``jobs``/``clusters`` talk to a registry, ``serve`` runs the service and ``db`` migrates its
database. Exit status: 0 valid, 1 invalid topology, 2 usage error, 3 the server could not answer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .clusters import add_clusters_commands
from .common import EXIT_INVALID, EXIT_UNAVAILABLE, EXIT_USAGE, EXIT_VALID, ServerFailed, UsageError
from .db import add_db_commands
from .jobs import add_jobs_commands
from .layout import add_layout_command
from .place import add_place_command
from .render import add_render_command
from .serve import add_serve_command
from .validate import add_validate_command

__all__ = [
    "EXIT_INVALID",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "EXIT_VALID",
    "ServerFailed",
    "UsageError",
    "build_parser",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshctx", description="Plan and check device-mesh topologies.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        add_validate_command,
        add_layout_command,
        add_place_command,
        add_serve_command,
        add_render_command,
        add_jobs_commands,
        add_clusters_commands,
        add_db_commands,
    ):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except UsageError as error:
        print(f"meshctx {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ServerFailed as error:
        print(f"meshctx {args.command}: server error: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
