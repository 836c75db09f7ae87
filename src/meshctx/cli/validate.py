"""``meshctx validate``: check sizes against a world size (exit 0 valid, 1 invalid), offline or with ``--server``."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_INVALID, EXIT_VALID, add_topology_args, ask_server, print_json, request_from_args
from .text import report_text


def add_validate_command(commands: Any) -> None:
    validate = commands.add_parser("validate", help="check sizes against a world size (exit 0 valid, 1 invalid)")
    add_topology_args(validate)
    validate.set_defaults(handler=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    if args.server:
        report = ask_server(args, lambda client: client.validate(request))
    else:
        report = request.validate().to_dict()
    if args.json:
        print_json(report)
    else:
        print(report_text(request.to_dict(), report))
    return EXIT_VALID if report["valid"] else EXIT_INVALID
