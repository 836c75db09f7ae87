"""``meshctx render TARGET``: the launcher settings of a valid topology, offline.

The launch flags come from ``meshctx.launch.spec.RENDER_OPTIONS`` (the HTTP body's fields, spelled as flags); the
training command is one shell-quoted ``--command 'train.py --lr 3e-4'`` or everything after ``--``.
Exit status as ``meshctx validate``: 0 rendered, 1 invalid topology, 2 usage error (bad launch settings too),
3 the ``--server`` could not answer. With ``--server URL`` the service renders (``POST /v1/render/TARGET``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ..launch import TARGETS, LaunchError, LaunchSpec, validate_and_render
from ..launch.spec import RENDER_OPTIONS, OptionKind, RenderOption
from ..launch.text import yaml_text
from ..plan.request import TopologyRequest
from .common import EXIT_INVALID, EXIT_VALID, UsageError, add_topology_args, ask_server, request_from_args
from .text import report_text

TRAIN_COMMAND = "train_command"


class _RenderParser(argparse.ArgumentParser):
    """Everything after the first ``--`` is the training command, taken verbatim (argparse alone cannot put
    a free-form argv after ``render TARGET``'s own flags)."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        given = list(sys.argv[1:] if args is None else args)
        head, tail = (given[: given.index("--")], given[given.index("--") + 1 :]) if "--" in given else (given, None)
        parsed, extras = super().parse_known_args(head, namespace)
        if extras:  # most often a training command's own flags, typed after an unquoted --command
            self.error(
                f"unrecognized arguments: {' '.join(extras)} (a training command with arguments goes in one "
                "quoted --command 'train.py --lr 3e-4', or last, after --)"
            )
        parsed.command_after_dashes = tail
        return parsed, extras


def _add_option(group: argparse._ArgumentGroup, option: RenderOption) -> None:
    """One ``RENDER_OPTIONS`` entry as a flag; unset flags stay ``None`` so the table's default applies once."""
    shown = f" (default {option.default})" if option.default is not None and option.kind is not OptionKind.ARGV else ""
    if option.kind is OptionKind.ARGV:
        group.add_argument(
            option.flag,
            dest=TRAIN_COMMAND,  # not ``command``: the subcommand's name lives there
            metavar="'CMD ARGS'",
            help=f"{option.help}, as one shell-quoted string; or put it last, after -- "
            f"(default {' '.join(option.default or ())})",
        )
    elif option.kind is OptionKind.CHOICE:
        group.add_argument(option.flag, choices=option.choices, help=option.help + shown)
    else:
        kind = int if option.kind is OptionKind.PORT else str
        group.add_argument(option.flag, type=kind, help=option.help + shown)


def add_render_command(commands: Any) -> argparse.ArgumentParser:
    """Add ``render`` to the ``meshctx`` subcommands (``commands`` is ``add_subparsers()``'s result); its launch
    flags are ``meshctx.launch.RENDER_OPTIONS``, the same table the HTTP body is built from."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "render",
        help="launcher settings for a valid topology: " + ", ".join(TARGETS),
        usage="%(prog)s TARGET [flags] [-- COMMAND ARGS...]",
    )
    parser.__class__ = _RenderParser  # add_parser makes the parent's class; only render splits at --
    parser.add_argument("target", choices=TARGETS, help="what to render for")
    add_topology_args(parser)
    launch = parser.add_argument_group("launch")
    for option in RENDER_OPTIONS:
        _add_option(launch, option)
    parser.add_argument(
        "--format",
        choices=("yaml", "json"),
        help="the rendered document as YAML or JSON (default: the target's own form — a shell command for "
        "torchrun, a batch script for slurm, YAML for trainjob, kueue and skypilot; PyYAML is not needed)",
    )
    parser.set_defaults(handler=cmd_render)
    return parser


def _command(args: argparse.Namespace) -> tuple[str, ...] | None:
    after = getattr(args, "command_after_dashes", None)
    given: str | None = getattr(args, TRAIN_COMMAND)
    if given is not None and after is not None:
        raise UsageError("give the training command once: --command 'CMD ARGS' or after --, not both")
    if after is not None:
        if not after:
            raise UsageError("nothing after --: put the training command there, e.g. -- python train.py --lr 3e-4")
        return tuple(after)
    if given is None:
        return None
    try:
        words = shlex.split(given)
    except ValueError as error:
        raise UsageError(f"--command: cannot split {given!r} as a shell line ({error}); check its quotes") from None
    if not words:
        raise UsageError("--command is empty: give the training script, e.g. --command 'train.py --lr 3e-4'")
    return tuple(words)


def launch_from_args(args: argparse.Namespace) -> LaunchSpec:
    if args.nnodes is None or args.nproc_per_node is None:
        raise UsageError("render needs --nnodes (N or MIN:MAX) and --nproc-per-node")
    if args.world_size is not None or args.ranks is not None:
        raise UsageError("render takes --nnodes and --nproc-per-node, not --world-size or --ranks")
    options = {o.name: getattr(args, o.name) for o in RENDER_OPTIONS if o.kind is not OptionKind.ARGV}
    options["command"] = _command(args)
    return LaunchSpec.from_options(args.nnodes, args.nproc_per_node, options)


def render_body(request: TopologyRequest, launch: LaunchSpec) -> dict[str, Any]:
    """The ``POST /v1/render/{target}`` body: the topology's fields plus the launch settings."""
    topology = request.to_dict()
    body: dict[str, Any] = {k: topology[k] for k in ("strategy", "sizes", "model") if k in topology}
    if request.cluster is not None:  # the nodes' GPUs: the service refuses more processes than GPUs per node
        body["cluster"] = {
            "gpus_per_node": request.cluster.gpus_per_node,
            "nvlink_domain": request.cluster.nvlink_domain,
        }
    return body | asdict(launch) | {"command": list(launch.command)}


def _render_locally(target: str, request: TopologyRequest, launch: LaunchSpec) -> dict[str, Any]:
    try:
        report, rendering = validate_and_render(
            target, request.strategy, request.sizes, launch, model=request.model, cluster=request.cluster
        )
    except LaunchError as error:
        raise UsageError(
            "; ".join(f"--{field.replace('_', '-')}: {detail}" for field, detail in error.errors)
        ) from None
    return report.to_dict() | {"rendering": rendering.to_dict() if rendering is not None else None}


def _document(rendering: dict[str, Any], form: str | None) -> str:
    """The rendering in the form asked for: its own text, or its data as YAML or JSON."""
    if form == "json":
        return json.dumps(rendering["data"], indent=2, ensure_ascii=False) + "\n"
    if form == "yaml":
        return yaml_text(rendering["data"])
    return str(rendering["text"])


def cmd_render(args: argparse.Namespace) -> int:
    launch = launch_from_args(args)
    request = request_from_args(args)
    if args.server:
        body = render_body(request, launch)
        answer = ask_server(args, lambda client: client.render(args.target, body))
    else:
        answer = _render_locally(args.target, request, launch)
    rendering = answer["rendering"]
    if args.json:
        print(json.dumps(answer, indent=2))
    elif rendering is None:
        report = {k: v for k, v in answer.items() if k != "rendering"}
        print(report_text(request.to_dict(), report), file=sys.stderr)
    else:
        print(_document(rendering, args.format), end="")
        for line in (*(w["message"] for w in answer["warnings"]), *rendering["notes"]):
            print(f"# {line}", file=sys.stderr)
    return EXIT_VALID if rendering is not None else EXIT_INVALID
