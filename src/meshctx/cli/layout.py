"""``meshctx layout``: the mesh, one rank's coordinates and groups (``--rank``), or every group (``--groups``)."""

from __future__ import annotations

import argparse
from typing import Any

from ..integrations.limits import DEFAULT_MAX_LISTED_WORLD_SIZE
from ..plan.request import TopologyRequest
from .common import (
    EXIT_INVALID,
    EXIT_VALID,
    UsageError,
    add_topology_args,
    ask_server,
    print_json,
    request_from_args,
)
from .text import layout_text, rank_view_text, report_text


def add_layout_command(commands: Any) -> None:
    layout = commands.add_parser("layout", help="show the mesh, one rank's groups (--rank) or every group")
    add_topology_args(layout)
    layout.add_argument("--rank", type=int, help="show this global rank's coordinates and groups")
    layout.add_argument("--groups", action="store_true", help="list every group of every axis")
    layout.set_defaults(handler=cmd_layout)


def _local_layout(args: argparse.Namespace, request: TopologyRequest) -> dict[str, Any]:
    """What ``POST /v1/layout`` answers: the report if there is no plan, else a rank's view or the plan."""
    report = request.validate(suggest=True)
    if report.plan is None:
        return report.to_dict()
    if args.rank is not None:
        try:
            return report.plan.rank_view(args.rank)
        except ValueError as error:
            raise UsageError(str(error)) from None
    if args.groups and report.plan.world_size > DEFAULT_MAX_LISTED_WORLD_SIZE:  # the service's limit, offline too
        raise UsageError(
            f"--groups: listing every group of {report.plan.world_size} ranks is refused above "
            f"{DEFAULT_MAX_LISTED_WORLD_SIZE} ranks, as the service refuses it; ask for one rank's view with --rank N"
        )
    return report.plan.to_dict(groups=args.groups)


def cmd_layout(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    if args.server:
        data = ask_server(args, lambda client: client.layout(request, groups=args.groups, rank=args.rank))
    else:
        data = _local_layout(args, request)
    if "valid" in data:  # no plan: the validation report says why
        print_json(data) if args.json else print(report_text(request.to_dict(), data))
        return EXIT_INVALID
    if args.rank is not None:
        print_json(data) if args.json else print(rank_view_text(data))
    else:
        print_json(data) if args.json else print(layout_text(data))
    return EXIT_VALID
