"""``meshctx render TARGET``: the launcher settings of a valid topology, offline.

Exit status as ``meshctx validate``: 0 rendered, 1 invalid topology, 2 usage error (bad launch settings too),
3 the ``--server`` could not answer. With ``--server URL`` the service renders (``POST /v1/render/TARGET``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from ..launch import TARGETS, LaunchError, LaunchSpec, validate_and_render
from ..launch.text import yaml_text
from ..plan.request import TopologyRequest
from .common import EXIT_INVALID, EXIT_VALID, UsageError, add_topology_args, ask_server, request_from_args
from .text import report_text


def add_render_command(commands: Any) -> argparse.ArgumentParser:
    """Add ``render`` to the ``meshctx`` subcommands (``commands`` is ``add_subparsers()``'s result)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "render", help="launcher settings for a valid topology: " + ", ".join(TARGETS)
    )
    parser.add_argument("target", choices=TARGETS)
    add_topology_args(parser)
    launch = parser.add_argument_group("launch")
    launch.add_argument("--job-name", default="meshctx-job")
    launch.add_argument("--rdzv-endpoint", help="HOST:PORT of the rendezvous (torchrun, multi-node)")
    launch.add_argument("--rdzv-backend", default="c10d")
    launch.add_argument("--accelerator", help="GPU type, e.g. H100 (SkyPilot; Slurm gres type)")
    launch.add_argument("--image", help="container image (TrainJob)")
    launch.add_argument("--runtime", default="torch-distributed", help="TrainJob runtimeRef name")
    launch.add_argument("--queue", help="Kueue LocalQueue name (TrainJob label)")
    launch.add_argument("--slice-topology", help="Kueue: node label of the domain each group stays in")
    launch.add_argument("--slice-group", choices=("model", "stage"), default="model")
    launch.add_argument("--podset-topology", help="Kueue: node label of the domain the whole job stays in")
    launch.add_argument("--podset-topology-mode", choices=("required", "preferred"), default="required")
    launch.add_argument("--command", nargs=argparse.REMAINDER, default=["train.py"], help="training command (last)")
    for action in parser._actions:  # help for the launch settings that have none of their own
        action.help = action.help or _LAUNCH_HELP.get(action.dest)
    parser.add_argument(
        "--format",
        choices=("yaml", "json"),
        help="the rendered document as YAML or JSON (default: the target's own form — a shell command for "
        "torchrun, a batch script for slurm, YAML for trainjob, kueue and skypilot; PyYAML is not needed)",
    )
    parser.set_defaults(handler=cmd_render)
    return parser


_LAUNCH_HELP = {
    "target": "what to render for",
    "job_name": "job name (default meshctx-job)",
    "rdzv_backend": "torchrun rendezvous backend (default c10d)",
    "slice_group": "Kueue: keep each model replica (model, default) or each pipeline stage (stage) in one slice",
    "podset_topology_mode": "Kueue: whether the pod set's topology is required (default) or preferred",
}


def launch_from_args(args: argparse.Namespace) -> LaunchSpec:
    if args.nnodes is None or args.nproc_per_node is None:
        raise UsageError("render needs --nnodes (N or MIN:MAX) and --nproc-per-node")
    if args.world_size is not None or args.ranks is not None:
        raise UsageError("render takes --nnodes and --nproc-per-node, not --world-size or --ranks")
    return LaunchSpec(
        nnodes=args.nnodes,
        nproc_per_node=args.nproc_per_node,
        job_name=args.job_name,
        command=tuple(args.command) or ("train.py",),
        rdzv_endpoint=args.rdzv_endpoint,
        rdzv_backend=args.rdzv_backend,
        accelerator=args.accelerator,
        image=args.image,
        runtime=args.runtime,
        queue=args.queue,
        slice_topology=args.slice_topology,
        slice_group=args.slice_group,
        podset_topology=args.podset_topology,
        podset_topology_mode=args.podset_topology_mode,
    )


def render_body(request: TopologyRequest, launch: LaunchSpec) -> dict[str, Any]:
    """The ``POST /v1/render/{target}`` body: the topology's fields plus the launch settings."""
    topology = request.to_dict()
    body = {k: topology[k] for k in ("strategy", "sizes", "model") if k in topology}
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
