"""The ``meshctx`` command line: validate a topology and show its layout, offline or against a service
(``--server URL``, same output), and ``meshctx serve`` to run that service.

Exit status: 0 valid, 1 invalid topology, 2 usage error, 3 the server could not answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..plan import ClusterShape, MeshPlan, ModelShape
from ..plan.planner import parse_nnodes
from ..plan.request import TopologyRequest
from ..plan.sizes import ParallelismSizes
from .text import layout_text, rank_view_text, report_text

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


class UsageError(Exception):
    """Bad command-line input: reported on stderr with exit status 2."""


class ServerFailed(Exception):
    """``--server`` could not be reached or failed: reported on stderr with exit status 3."""


def _nnodes(text: str) -> int | str:
    if parse_nnodes(text) is None:
        raise argparse.ArgumentTypeError(f"expected N or MIN:MAX with 1 ≤ MIN ≤ MAX, got {text!r}")
    return int(text) if ":" not in text else text


def _ranks(text: str) -> tuple[int, ...]:
    """``0-3,8,10-11`` → (0, 1, 2, 3, 8, 10, 11)."""
    out: list[int] = []
    try:
        for part in text.split(","):
            low, sep, high = part.strip().partition("-")
            out.extend(range(int(low), int(high) + 1) if sep else [int(low)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ranks like 0-7 or 0,2,4, got {text!r}") from None
    return tuple(out)


def add_topology_args(parser: argparse.ArgumentParser) -> None:
    world = parser.add_argument_group("world")
    world.add_argument("--strategy", default="fsdp2", help="fsdp2 (default), megatron_fsdp or ddp")
    world.add_argument("--world-size", type=int, help="number of ranks")
    world.add_argument("--nnodes", type=_nnodes, help="nodes, or an elastic range MIN:MAX")
    world.add_argument("--nproc-per-node", type=int, help="processes (GPUs) per node")
    world.add_argument("--ranks", type=_ranks, help="a rank subset for this mesh, e.g. 0-7 or 8-15")
    sizes = parser.add_argument_group("sizes (unset: 1; dp inferred)")
    for flag, dest in (("--tp", "tp_size"), ("--pp", "pp_size"), ("--cp", "cp_size"), ("--ep", "ep_size")):
        sizes.add_argument(flag, dest=dest, type=int, default=1)
    sizes.add_argument("--dp", dest="dp_size", type=int)
    sizes.add_argument("--dp-replicate", dest="dp_replicate_size", type=int)
    cluster = parser.add_argument_group("cluster")
    cluster.add_argument("--gpus-per-node", type=int)
    cluster.add_argument("--nvlink-domain", type=int, help="GPUs per NVLink domain (e.g. 72)")
    model = parser.add_argument_group("model")
    model.add_argument("--heads", dest="num_attention_heads", type=int)
    model.add_argument("--kv-heads", dest="num_key_value_heads", type=int)
    model.add_argument("--experts", dest="num_experts", type=int)
    model.add_argument("--layers", dest="num_hidden_layers", type=int)
    model.add_argument("--seq-len", dest="seq_length", type=int)
    model.add_argument("--global-batch", dest="global_batch_size", type=int)
    model.add_argument("--micro-batch", dest="micro_batch_size", type=int)
    parser.add_argument("--json", action="store_true", help="print the JSON wire format")
    parser.add_argument("--server", metavar="URL", help="ask a running meshctx service instead of planning locally")


def request_from_args(args: argparse.Namespace) -> TopologyRequest:
    if args.world_size is None and args.nnodes is None and args.ranks is None:
        raise UsageError("give --world-size, or --nnodes with --nproc-per-node, or --ranks")
    if args.nnodes is not None and args.nproc_per_node is None:
        raise UsageError("--nnodes needs --nproc-per-node")
    model_fields = ModelShape.__dataclass_fields__
    model_values = {name: getattr(args, name) for name in model_fields}
    cluster = None
    if args.gpus_per_node is not None:
        cluster = ClusterShape(gpus_per_node=args.gpus_per_node, nvlink_domain=args.nvlink_domain)
    elif args.nvlink_domain is not None:
        raise UsageError("--nvlink-domain needs --gpus-per-node")
    return TopologyRequest(
        strategy=args.strategy,
        sizes=ParallelismSizes(
            tp_size=args.tp_size,
            pp_size=args.pp_size,
            cp_size=args.cp_size,
            ep_size=args.ep_size,
            dp_size=args.dp_size,
            dp_replicate_size=args.dp_replicate_size,
        ),
        world_size=args.world_size,
        nnodes=args.nnodes,
        nproc_per_node=args.nproc_per_node,
        ranks=args.ranks,
        cluster=cluster,
        model=ModelShape(**model_values) if any(v is not None for v in model_values.values()) else None,
    )


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _ask_server(url: str, call: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Run ``call(client)`` against the service; its refusals become usage errors, as they would locally."""
    from ..client import MeshctxClient, MeshctxError, ProblemError

    try:
        with MeshctxClient(url) as client:
            return call(client)
    except ProblemError as error:
        if 400 <= error.status < 500:
            raise UsageError("; ".join(e["detail"] for e in error.errors) or str(error)) from None
        raise ServerFailed(f"{url}: {error}") from None
    except MeshctxError as error:
        raise ServerFailed(str(error)) from None


def cmd_validate(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    if args.server:
        report = _ask_server(args.server, lambda client: client.validate(request))
    else:
        report = request.validate().to_dict()
    if args.json:
        _print_json(report)
    else:
        print(report_text(request.to_dict(), report))
    return EXIT_VALID if report["valid"] else EXIT_INVALID


def _local_layout(args: argparse.Namespace, request: TopologyRequest) -> dict[str, Any]:
    """What ``POST /v1/layout`` answers: the report if there is no plan, else a rank's view or the plan."""
    report = request.validate(suggest=True)
    if report.plan is None:
        return report.to_dict()
    plan: MeshPlan = report.plan
    if args.rank is not None:
        try:
            return plan.rank_view(args.rank)
        except ValueError as error:
            raise UsageError(str(error)) from None
    return plan.to_dict(groups=args.groups)


def cmd_layout(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    if args.server:
        data = _ask_server(args.server, lambda client: client.layout(request, groups=args.groups, rank=args.rank))
    else:
        data = _local_layout(args, request)
    if "valid" in data:  # no plan: the validation report says why
        _print_json(data) if args.json else print(report_text(request.to_dict(), data))
        return EXIT_INVALID
    if args.rank is not None:
        _print_json(data) if args.json else print(rank_view_text(data))
    else:
        _print_json(data) if args.json else print(layout_text(data))
    return EXIT_VALID


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service under uvicorn; flags override ``MESHCTX_*`` settings (workers read them from the env)."""
    try:
        import uvicorn

        from meshctx_service.settings import Settings
    except ImportError as error:
        raise UsageError(f"serve needs the service extra (pip install 'meshctx[service]'): {error}") from None
    for name in ("host", "port", "workers", "log_level"):
        if getattr(args, name) is not None:
            os.environ[f"MESHCTX_{name.upper()}"] = str(getattr(args, name))
    try:
        settings = Settings()
    except ValueError as error:  # pydantic's ValidationError: a bad MESHCTX_* setting
        raise UsageError(str(error)) from None
    uvicorn.run(
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshctx", description="Plan and check device-mesh topologies.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check sizes against a world size (exit 0 valid, 1 invalid)")
    add_topology_args(validate)
    validate.set_defaults(handler=cmd_validate)

    layout = commands.add_parser("layout", help="show the mesh, one rank's groups (--rank) or every group")
    add_topology_args(layout)
    layout.add_argument("--rank", type=int, help="show this global rank's coordinates and groups")
    layout.add_argument("--groups", action="store_true", help="list every group of every axis")
    layout.set_defaults(handler=cmd_layout)

    serve = commands.add_parser("serve", help="run the validation service (settings also from MESHCTX_* env vars)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000)")
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default 1)")
    serve.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(handler=cmd_serve)

    from .render import add_render_command  # imported here: render imports this module

    add_render_command(commands)

    from .registry import add_registry_commands

    add_registry_commands(commands)
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
