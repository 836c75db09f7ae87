"""What every ``meshctx`` command shares: exit codes, errors, the topology flags, calling a server, and the one
door to the service package.

Exit status: 0 valid (or done), 1 invalid topology (or the registry refused), 2 usage error, 3 the server could
not answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MeshctxError
from ..plan import ClusterShape, ModelShape, parse_nnodes
from ..plan.model import MODEL_FIELDS
from ..plan.request import TopologyRequest
from ..plan.sizes import SIZE_FIELDS, SIZE_TABLE, ParallelismSizes

if TYPE_CHECKING:
    from ..client import MeshctxClient

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
Json = dict[str, Any]


class UsageError(MeshctxError):
    """Bad command-line input: reported on stderr with exit status 2."""


class ServerFailed(MeshctxError):
    """``--server`` could not be reached or failed: reported on stderr with exit status 3."""


# -- the topology flags -------------------------------------------------------------------------------------


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


#: Model-shape flag → ``ModelShape`` field.
MODEL_FLAGS: dict[str, str] = {
    "--heads": "num_attention_heads",
    "--kv-heads": "num_key_value_heads",
    "--experts": "num_experts",
    "--layers": "num_hidden_layers",
    "--seq-len": "seq_length",
    "--global-batch": "global_batch_size",
    "--micro-batch": "micro_batch_size",
}
assert sorted(MODEL_FLAGS.values()) == sorted(MODEL_FIELDS), "a ModelShape field has no flag"
MODEL_HELP: dict[str, str] = {
    "--heads": "attention heads (checked: divisible by tp)",
    "--kv-heads": "key/value heads (checked: divisible by tp)",
    "--experts": "MoE experts (checked: divisible by ep)",
    "--layers": "transformer layers (checked: at least pp)",
    "--seq-len": "sequence length (checked: divisible by 2·cp·tp when cp > 1)",
    "--global-batch": "global batch size (checked: divisible by micro batch × dp)",
    "--micro-batch": "micro batch size per rank",
}


def add_topology_args(parser: argparse.ArgumentParser) -> None:
    """The strategy, the world, the sizes (from ``SIZE_TABLE``), cluster and model, ``--json`` and ``--server``."""
    world = parser.add_argument_group("world (torchrun's underscore spellings, e.g. --nproc_per_node, work too)")
    world.add_argument("--strategy", default="fsdp2", help="fsdp2 (default), megatron_fsdp or ddp")
    world.add_argument("--world-size", type=int, help="number of ranks")
    world.add_argument("--nnodes", type=_nnodes, help="nodes, or an elastic range MIN:MAX")
    world.add_argument("--nproc-per-node", type=int, help="processes (GPUs) per node")
    world.add_argument("--ranks", type=_ranks, help="a rank subset for this mesh, e.g. 0-7 or 8-15")
    sizes = parser.add_argument_group("sizes (unset: 1; dp inferred)")
    for field in SIZE_TABLE:
        default = None if field.optional else 1
        sizes.add_argument(field.flag, dest=field.name, type=int, default=default, help=field.help)
    cluster = parser.add_argument_group("cluster")
    cluster.add_argument(
        "--gpus-per-node",
        type=int,
        help="GPUs per node (default: --nproc-per-node); processes per node may not exceed it",
    )
    cluster.add_argument("--nvlink-domain", type=int, help="GPUs per NVLink domain (e.g. 72)")
    model = parser.add_argument_group("model (optional; checked against the sizes)")
    for flag, dest in MODEL_FLAGS.items():
        model.add_argument(flag, dest=dest, type=int, help=MODEL_HELP[flag])
    parser.add_argument("--json", action="store_true", help="print the JSON wire format")
    parser.add_argument(
        "--server", metavar="URL", help="ask a running meshctx service (http://HOST:PORT) instead of planning locally"
    )


def request_from_args(args: argparse.Namespace) -> TopologyRequest:
    if args.world_size is None and args.nnodes is None and args.ranks is None:
        raise UsageError("give --world-size, or --nnodes with --nproc-per-node, or --ranks")
    if args.nnodes is not None and args.nproc_per_node is None:
        raise UsageError("--nnodes needs --nproc-per-node")
    if args.nproc_per_node is not None and args.nnodes is None:
        raise UsageError("--nproc-per-node needs --nnodes (or give --world-size alone)")
    model_values = {name: getattr(args, name) for name in MODEL_FIELDS}
    cluster = None
    gpus_per_node = args.gpus_per_node
    if gpus_per_node is None and args.nvlink_domain is not None:
        gpus_per_node = args.nproc_per_node  # one GPU a process, as without --nvlink-domain
        if gpus_per_node is None:
            raise UsageError("--nvlink-domain needs --gpus-per-node (or --nnodes with --nproc-per-node)")
    if gpus_per_node is not None:
        cluster = ClusterShape(gpus_per_node=gpus_per_node, nvlink_domain=args.nvlink_domain)
    return TopologyRequest(
        strategy=args.strategy,
        sizes=ParallelismSizes(**{name: getattr(args, name) for name in SIZE_FIELDS}),
        world_size=args.world_size,
        nnodes=args.nnodes,
        nproc_per_node=args.nproc_per_node,
        ranks=args.ranks,
        cluster=cluster,
        model=ModelShape(**model_values) if any(v is not None for v in model_values.values()) else None,
    )


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# -- calling a server ---------------------------------------------------------------------------------------


def checked_server_url(server: str) -> str:
    """``--server`` must be an http(s) URL: ``localhost:8000`` is a usage error naming the fix, not a failed call."""
    scheme, sep, rest = server.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise UsageError(
            f"--server {server!r} is not an http(s) URL; give the scheme, e.g. --server http://{rest or server}"
            if not sep
            else f"--server {server!r} is not an http(s) URL; use http://HOST:PORT or https://HOST:PORT"
        )
    return server


def client_module(command: str) -> Any:
    """``meshctx.client``, or a usage error naming the extra when httpx is missing (``pip install meshctx``
    brings no dependencies; the ``client`` extra adds httpx)."""
    try:
        from .. import client
    except ImportError as error:
        if getattr(error, "name", None) != "httpx":
            raise
        raise UsageError(f"{command} needs httpx: pip install 'meshctx[client]'") from None
    return client


def with_client(
    server: str, work: Callable[[MeshctxClient], Any], *, token: str | None = None, command: str = "--server"
) -> Any:
    """``work(client)``; no answer or a server error (5xx) is ``ServerFailed``, a refusal (``ProblemError``,
    status below 500) is left to the caller."""
    server = checked_server_url(server)
    client = client_module(command)
    MeshctxClient, ProblemError, ClientError = client.MeshctxClient, client.ProblemError, client.ClientError

    try:
        with MeshctxClient(server, token=token) as client:
            return work(client)
    except ProblemError as error:
        if error.status < 500:
            raise
        raise ServerFailed(f"{server}: {error}") from None
    except ClientError as error:
        raise ServerFailed(str(error)) from None


def ask_server(args: argparse.Namespace, call: Callable[[MeshctxClient], Json]) -> Json:
    """``call(client)`` on ``--server`` for validate, layout and render: a refusal becomes a usage error, as it
    would locally."""
    url, command = args.server, f"meshctx {args.cli_command} --server"
    ProblemError = client_module(command).ProblemError

    try:
        return with_client(url, call, token=getattr(args, "token", None) or None, command=command)
    except ProblemError as error:
        if error.status >= 400:
            raise UsageError("; ".join(e["detail"] for e in error.errors) or str(error)) from None
        raise ServerFailed(f"{url}: {error}") from None


def connection_args(parser: argparse.ArgumentParser, *, topology: bool = False) -> None:
    """``--token`` (and ``--json``, ``--server`` unless ``add_topology_args`` brought them) for registry calls."""
    if not topology:
        parser.add_argument("--json", action="store_true", help="print the service's JSON")
        parser.add_argument(
            "--server", metavar="URL", help="the meshctx service, http://HOST:PORT (default $MESHCTX_SERVER)"
        )
    parser.add_argument("--token", help="bearer token (default $MESHCTX_TOKEN)")


def page_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="most items on this page (1-1000, default 100)")
    parser.add_argument("--cursor", help="next_cursor of the previous page")


def registry_call(args: argparse.Namespace, work: Callable[[MeshctxClient], Any]) -> tuple[int, Any]:
    """Run ``work(client)`` against ``--server`` (or ``$MESHCTX_SERVER``); a refusal is printed (problem+json
    with --json) and gives exit status 1."""
    server = args.server or os.environ.get("MESHCTX_SERVER")
    if not server:
        raise UsageError("give --server URL or set MESHCTX_SERVER")
    command = f"meshctx {args.cli_command}"
    ProblemError = client_module(command).ProblemError
    try:
        return EXIT_VALID, with_client(server, work, token=args.token or None, command=command)
    except ProblemError as error:
        _print_problem(args, error.problem)
        return EXIT_INVALID, None


def _print_problem(args: argparse.Namespace, problem: Json) -> None:
    if args.json:
        print_json(problem)
        return
    lines = [
        f"refused ({problem.get('status')} {problem.get('code') or problem.get('title', '')}): {problem.get('detail')}"
    ]
    lines += [f"  {e['field']}: {e['detail']}" for e in problem.get("errors") or []]
    for found in problem.get("problems") or []:
        lines.append(f"  ✗ {found['message']}\n    fix: {found['hint']}")
    print("\n".join(lines), file=sys.stderr)


def emit(args: argparse.Namespace, outcome: tuple[int, Any], text: Callable[[Any], str]) -> int:
    """Print a registry answer (JSON with ``--json``, else ``text(answer)``); the exit status."""
    status, data = outcome
    if status == EXIT_VALID and data is not None:
        print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text(data))
    return status


def table(rows: list[list[str]], next_cursor: str | None) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    if next_cursor:
        out.append(f"(more: --cursor {next_cursor})")
    return "\n".join(out)


# -- the service package ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceParts:
    """What ``meshctx serve`` and ``meshctx db`` use of the service (the ``service`` extra)."""

    settings: Callable[[], Any]
    run_server: Callable[..., Any] | None = None
    #: The HTTP/1.1 protocol class ``run_server`` serves with (``uvicorn.run(http=...)``).
    http_protocol: type | None = None
    default_database_url: Callable[[Any], str] | None = None
    upgrade_database: Callable[..., str | None] | None = None
    #: Reads the token settings (``TokenConfigError``, a ``ValueError``, when malformed) before the server starts.
    load_tokens: Callable[[Any], Any] | None = None


def load_service(command: str) -> ServiceParts:
    """The service, imported when ``serve`` or ``db`` runs: the one place the library names ``meshctx_service``
    (which ships in the ``service`` extra and never loads with ``import meshctx``)."""
    try:
        if command == "db":
            from meshctx_service.registry import default_database_url, upgrade_database
            from meshctx_service.settings import Settings

            return ServiceParts(Settings, default_database_url=default_database_url, upgrade_database=upgrade_database)
        import uvicorn

        from meshctx_service.auth.gate import load_tokens
        from meshctx_service.http.protocol import HttpProtocol
        from meshctx_service.settings import Settings

        return ServiceParts(Settings, run_server=uvicorn.run, http_protocol=HttpProtocol, load_tokens=load_tokens)
    except ImportError as error:
        what = "db upgrade" if command == "db" else command
        raise UsageError(f"{what} needs the service extra (pip install 'meshctx[service]'): {error}") from None
