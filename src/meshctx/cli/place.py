"""``meshctx place``: which allocated node runs which node rank, so the plan's groups stay inside fast links.

Offline it calls ``meshctx.place.place``; with ``--server`` it posts the same request to ``POST /v1/place`` and
prints the answer the same way. The topology is read here in both cases (a meshctx topology file, Slurm's
``topology.conf`` / ``topology.yaml`` or ``kubectl get nodes -o json``) and sent inline as meshctx JSON.
Exit status: 0 placed, 1 the topology or the placement has problems, 2 usage error, 3 the server could not answer.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..launch.spec import DEFAULT_MASTER_PORT
from ..place import Topology, parse_hostlist
from ..place.answer import place_answer
from ..place.importers import import_kubectl, import_slurm_conf, import_slurm_yaml, load_json, load_yaml
from ..place.report import BASELINES
from ..place.topology import TIER_NAMES
from ..plan.request import TopologyRequest
from .common import (
    EXIT_INVALID,
    EXIT_VALID,
    Json,
    UsageError,
    add_topology_args,
    ask_server,
    print_json,
    request_from_args,
)
from .text import report_text


def add_place_command(commands: Any) -> None:
    cmd = commands.add_parser(
        "place",
        help="order the allocated nodes so tp/cp/ep groups stay inside NVLink domains and leaves",
        description="Order the allocated nodes (node rank i runs on order[i]) so the plan's groups cross as few "
        "NVLink domains, leaves and spines as possible; prints the crossings per axis against hostname order "
        "and the launch lines (Slurm host file + srun, torchrun node ranks). Exit 0 placed, 1 problems, 2 usage.",
    )
    add_topology_args(cmd)
    where = cmd.add_argument_group("cluster topology (one of)")
    source = where.add_mutually_exclusive_group(required=True)
    source.add_argument("--topology", metavar="FILE", help='meshctx topology, JSON or YAML: {"nodes": [...]}')
    source.add_argument(
        "--slurm-topology", metavar="FILE", help="Slurm topology.conf or topology.yaml (needs --gpus-per-node)"
    )
    source.add_argument("--kubectl-nodes", metavar="FILE", help="the output of `kubectl get nodes -o json`")
    where.add_argument(
        "--label-map",
        metavar="TIER=KEY[,TIER=KEY]",
        help="--kubectl-nodes: the node label key of a tier (nvlink_domain, leaf, spine) when the cluster uses "
        "its own, e.g. leaf=example.com/rack,spine=example.com/row (default: the GPU operator's, GKE's, "
        "Topograph's, OKE's and AWS's keys)",
    )
    source.add_argument(
        "--cluster",
        metavar="NAME",
        help="a cluster registered with its topology on --server (meshctx clusters put --topology)",
    )
    where.add_argument("--token", help="bearer token for --cluster (default $MESHCTX_TOKEN)")
    alloc = cmd.add_argument_group("allocation")
    alloc.add_argument(
        "--nodes",
        metavar="HOSTLIST|@FILE",
        help="allocated hosts: a Slurm hostlist (gpu-[001-032,040]), a comma list, or @FILE with one host or "
        "hostlist a line (default: every node of the topology)",
    )
    cmd.add_argument(
        "--search",
        choices=("default", "exhaustive"),
        default="default",
        help="default: bounded work, ≤ 100 ms at 2,048 nodes; exhaustive: every axis sequence and a longer exact "
        "search (bounded too: seconds at most); the answer's search.mode says which ran",
    )
    launch = cmd.add_argument_group("launch")
    launch.add_argument("--command", dest="train_command", metavar="CMD", help="training command (default train.py)")
    launch.add_argument("--master-port", type=int, default=DEFAULT_MASTER_PORT, help=f"default {DEFAULT_MASTER_PORT}")
    cmd.set_defaults(handler=cmd_place)


# -- reading the inputs -------------------------------------------------------------------------------------


def _read(path: str, flag: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{flag} {path}: cannot read it ({error})") from None


def _load_structured(text: str, path: str, flag: str) -> Any:
    """JSON, else YAML without aliases (a superset, but JSON's errors are clearer for JSON files)."""
    if text.lstrip().startswith(("{", "[")):
        try:
            return load_json(text, f"{flag} {path}")
        except ValueError as error:
            if "nested deeper" in str(error):
                raise UsageError(str(error)) from None
    try:
        return load_yaml(text, f"{flag} {path}")
    except ValueError as error:
        raise UsageError(f"neither JSON nor YAML: {error}") from None


def parse_label_map(value: str | None) -> dict[str, str] | None:
    """``--label-map leaf=example.com/rack,spine=example.com/row`` as ``{tier: key}``."""
    if not value:
        return None
    pairs: dict[str, str] = {}
    for item in value.split(","):
        tier, eq, key = item.strip().partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--label-map: {item.strip()!r} is not TIER=KEY (e.g. leaf=example.com/rack)")
        pairs[tier.strip()] = key.strip()
    return pairs


def _warn(warnings: Sequence[str]) -> None:
    for warning in warnings:
        print(f"meshctx place: warning: {warning}", file=sys.stderr)


def load_topology(args: argparse.Namespace) -> Topology:
    """The cluster's topology from whichever of ``--topology``, ``--slurm-topology``, ``--kubectl-nodes``."""
    try:
        if args.topology:
            return Topology.from_dict(_load_structured(_read(args.topology, "--topology"), args.topology, "--topology"))
        label_map = parse_label_map(getattr(args, "label_map", None))
        if args.kubectl_nodes:
            path = args.kubectl_nodes
            data = _load_structured(_read(path, "--kubectl-nodes"), path, "--kubectl-nodes")
            imported = import_kubectl(data, label_map=label_map)
            _warn(imported.warnings)
            return imported.topology
        if label_map is not None:
            raise UsageError("--label-map names Kubernetes node labels; it goes with --kubectl-nodes")
        path = args.slurm_topology
        if args.gpus_per_node is None:
            raise UsageError("--slurm-topology needs --gpus-per-node: Slurm's topology files carry no GPU counts")
        text = _read(path, "--slurm-topology")
        if _looks_like_yaml(text):
            return import_slurm_yaml(text, gpus_per_node=args.gpus_per_node).topology
        return import_slurm_conf(text, gpus_per_node=args.gpus_per_node).topology
    except ValueError as error:
        flag = "--topology" if args.topology else "--kubectl-nodes" if args.kubectl_nodes else "--slurm-topology"
        raise UsageError(f"{flag}: {error}") from None


def read_topology_file(path: str) -> Topology:
    """``--topology FILE`` (meshctx topology, JSON or YAML) for ``meshctx clusters put``."""
    try:
        return Topology.from_dict(_load_structured(_read(path, "--topology"), path, "--topology"))
    except ValueError as error:
        raise UsageError(f"--topology: {error}") from None


def registered_topology(args: argparse.Namespace) -> Topology:
    """``--cluster``: the topology registered with the cluster on ``--server`` (to fill in the world size; the
    service places on its own copy)."""
    cluster = ask_server(args, lambda client: client.get_cluster(args.cluster))
    if cluster.get("topology") is None:
        raise UsageError(
            f"cluster {args.cluster!r} is registered without a topology; register one with "
            f"meshctx clusters put {args.cluster} --nodes N --gpus-per-node G --topology FILE"
        )
    return Topology.from_dict(cluster["topology"])


def _looks_like_yaml(text: str) -> bool:
    """topology.yaml is a list of ``- topology: NAME`` entries; topology.conf is ``Key=Value`` lines."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.startswith("-") or stripped.startswith("topology:")
    return False


def load_allocation(value: str | None) -> list[str] | None:
    """``--nodes``: a hostlist expression, or ``@FILE`` with one host or hostlist expression a line."""
    if value is None:
        return None
    if value.startswith("@"):
        lines = [line.split("#", 1)[0].strip() for line in _read(value[1:], "--nodes").splitlines()]
        expressions = [line for line in lines if line]
    else:
        expressions = [value]
    hosts: list[str] = []
    try:
        for expression in expressions:
            hosts.extend(parse_hostlist(expression))
    except ValueError as error:
        raise UsageError(f"--nodes: {error}") from None
    return hosts


def _fill_world(args: argparse.Namespace, topology: Topology, allocation: Sequence[str] | None) -> None:
    """No world given: the allocation's nodes × GPUs (when every allocated node has the same count)."""
    if args.world_size is not None or args.nnodes is not None or args.ranks is not None:
        return
    known = topology.by_name()
    hosts = topology.names() if allocation is None else allocation
    gpus = {known[h].gpus for h in hosts if h in known}
    if len(gpus) == 1:  # hosts not in the topology are named by the placement's unknown_node problem
        args.world_size = len(hosts) * gpus.pop()


# -- place --------------------------------------------------------------------------------------------------


def trimmed(topology: Topology, allocation: Sequence[str] | None) -> Topology:
    """The topology's allocated nodes only (the service needs no others, and the node limit and the body limit
    count what is sent): a 16,384-node job on a larger cluster sends 16,384 nodes. Names the topology lacks stay
    out, so the service reports them as unknown just as the whole topology would."""
    if allocation is None:
        return topology
    wanted = set(allocation)
    return Topology.of([node for node in topology.nodes if node.name in wanted], topology.labels)


def place_body(request: TopologyRequest, topology: Topology, allocation: Sequence[str] | None) -> Json:
    """The ``POST /v1/place`` body of one CLI call: the topology trimmed to the allocation."""
    body: Json = {**request.to_dict(), "topology": trimmed(topology, allocation).to_dict()}
    if allocation is not None:
        body["nodes"] = list(allocation)
    return body


def cmd_place(args: argparse.Namespace) -> int:
    if isinstance(args.nnodes, str):
        raise UsageError("place needs one node count, not an elastic range; give --nnodes N")
    if args.cluster and not args.server:
        raise UsageError("--cluster names a cluster registered on a service; give --server URL too")
    topology = registered_topology(args) if args.cluster else load_topology(args)
    allocation = load_allocation(args.nodes)
    _fill_world(args, topology, allocation)
    request = request_from_args(args)
    command = shlex.split(args.train_command) if args.train_command else None
    if args.server:
        body = place_body(request, topology, allocation)
        if args.cluster:
            del body["topology"]
            body["cluster_name"] = args.cluster
        if command is not None:
            body["command"] = command
        if args.master_port != DEFAULT_MASTER_PORT:
            body["master_port"] = args.master_port
        if args.search != "default":
            body["search"] = args.search
        data = ask_server(args, lambda client: client.place(body))
    else:
        data = place_answer(
            request, topology, allocation, command=command, master_port=args.master_port, search=args.search
        )
    if args.json:
        print_json(data)
    elif "valid" in data:
        print(report_text(request.to_dict(), data))
    else:
        print(placement_text(data))
    return EXIT_INVALID if "valid" in data else EXIT_VALID


# -- text ---------------------------------------------------------------------------------------------------


def _cells(crossing: Mapping[str, int]) -> str:
    return " / ".join(str(crossing[t]) for t in TIER_NAMES)


def placement_text(data: Mapping[str, Any]) -> str:
    """The crossings per axis against both baselines and the bound, then the order and the launch lines."""
    order: list[str] = data["order"]
    axes: Mapping[str, Any] = data["axes"]
    header = ["axis", "groups", *BASELINES, "meshctx", "lower bound"]
    rows = [header]
    for axis, entry in axes.items():
        baselines = [_cells(data["baselines"][name][axis]["crossing"]) for name in BASELINES]
        rows.append([axis, str(entry["groups"]), *baselines, _cells(entry["crossing"]), _cells(entry["lower_bound"])])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        f"placed {len(order)} nodes × {data['gpus_per_node']} GPUs; node rank i runs on order[i]",
        "",
        f"groups crossing each tier ({' / '.join(TIER_NAMES)}):",
    ]
    for index, row in enumerate(rows):
        lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            lines.append("  " + "  ".join("-" * width for width in widths))
    if not axes:
        lines.append("  (no axis of size > 1: nothing to keep together)")
    shown = ", ".join(f"{i}={host}" for i, host in enumerate(order[:8]))
    lines += ["", f"order: {shown}{', …' if len(order) > 8 else ''}"]
    search = data["search"]
    proof = f"optimal ({search['proof']})" if search["optimal"] else "not proven optimal"
    lines.append(f"search: {search['mode']}, {search['orders']} orders, {proof}")
    launch = data["launch"]
    slurm = launch["slurm"]
    lines += ["", "slurm (host file line i = node rank i):", *(f"  {line}" for line in slurm["script"])]
    if slurm.get("segment"):
        lines.append(f"  suggestion: --segment={slurm['segment']} — {slurm['segment_reason']}")
    torchrun = launch["torchrun"]
    lines += ["", "torchrun (static rendezvous; {node_rank} per host as listed in --json launch.torchrun.node_rank):"]
    lines.append(f"  {torchrun['command']}")
    return "\n".join(lines)
