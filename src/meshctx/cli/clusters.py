"""``meshctx clusters put|get|list|delete|occupancy``: the clusters jobs are registered on (``--server``, ``--token``).

Exit status as ``meshctx jobs``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .common import Json, connection_args, emit, page_args, registry_call, table

if TYPE_CHECKING:
    from ..client import MeshctxClient


def _cluster_line(cluster: Json) -> str:
    nvlink = cluster["nvlink_domain"] if cluster["nvlink_domain"] is not None else "-"
    topology = cluster.get("topology")
    nodes = f", topology of {len(topology['nodes'])} nodes" if topology else ""
    return (
        f"cluster {cluster['name']}: {cluster['nodes']} nodes × {cluster['gpus_per_node']} GPUs = {cluster['gpus']} "
        f"GPUs, NVLink domain {nvlink}{nodes}"
    )


def _clusters_table(page: Json) -> str:
    rows = [["CLUSTER", "NODES", "GPUS/NODE", "GPUS", "NVLINK"]]
    for c in page["items"]:
        nvlink = str(c["nvlink_domain"]) if c["nvlink_domain"] is not None else "-"
        rows.append([c["name"], str(c["nodes"]), str(c["gpus_per_node"]), str(c["gpus"]), nvlink])
    return table(rows, page["next_cursor"])


def cmd_clusters_put(args: argparse.Namespace) -> int:
    topology = None
    if args.topology:
        from .place import read_topology_file  # the same reader (and errors) as meshctx place --topology

        topology = read_topology_file(args.topology).to_dict()
    outcome = registry_call(
        args,
        lambda c: c.put_cluster(
            args.name,
            nodes=args.nodes,
            gpus_per_node=args.gpus_per_node,
            nvlink_domain=args.nvlink_domain,
            topology=topology,
        ),
    )
    return emit(args, outcome, _cluster_line)


def cmd_clusters_get(args: argparse.Namespace) -> int:
    return emit(args, registry_call(args, lambda c: c.get_cluster(args.name)), _cluster_line)


def cmd_clusters_list(args: argparse.Namespace) -> int:
    outcome = registry_call(args, lambda c: c.list_clusters(limit=args.limit, cursor=args.cursor))
    return emit(args, outcome, _clusters_table)


def _occupancy_text(occupancy: Json) -> str:
    rows = [["NODE", "JOB"]] + [[n["node"], n["job"] or "-"] for n in occupancy["occupancy"]]
    head = (
        f"cluster {occupancy['cluster']}: {occupancy['free_gpus']} of {occupancy['gpus']} GPUs free; "
        f"{occupancy['active_jobs']} active job(s) hold {occupancy['held_gpus']} GPUs and "
        f"{occupancy['held_nodes']} node(s)"
    )
    return head + ("\n" + table(rows, None) if occupancy["occupancy"] else "")


def cmd_clusters_occupancy(args: argparse.Namespace) -> int:
    return emit(args, registry_call(args, lambda c: c.occupancy(args.name)), _occupancy_text)


def cmd_clusters_delete(args: argparse.Namespace) -> int:
    def delete(client: MeshctxClient) -> Json:
        client.delete_cluster(args.name)
        return {"deleted": args.name}

    return emit(args, registry_call(args, delete), lambda d: f"deleted cluster {d['deleted']}")


def add_clusters_commands(commands: Any) -> None:
    clusters = commands.add_parser("clusters", help="manage the clusters jobs are registered on")
    cluster_commands = clusters.add_subparsers(dest="action", required=True, metavar="ACTION")
    put = cluster_commands.add_parser("put", help="create or reshape a cluster (admin token)")
    put.add_argument("name", help="the cluster's name")
    put.add_argument("--nodes", type=int, required=True, help="nodes in the cluster")
    put.add_argument("--gpus-per-node", type=int, required=True, help="GPUs on each node")
    put.add_argument("--nvlink-domain", type=int, help="GPUs per NVLink domain")
    put.add_argument(
        "--topology",
        metavar="FILE",
        help='its nodes: meshctx topology JSON or YAML {"nodes": [...]} (meshctx place and jobs placed on it use it)',
    )
    connection_args(put)
    put.set_defaults(handler=cmd_clusters_put)
    for action, handler, text in (
        ("get", cmd_clusters_get, "one cluster"),
        ("delete", cmd_clusters_delete, "delete a cluster without active jobs (admin token)"),
        ("occupancy", cmd_clusters_occupancy, "which active job holds each node, and the free GPUs"),
    ):
        sub = cluster_commands.add_parser(action, help=text)
        sub.add_argument("name", help="the cluster's name")
        connection_args(sub)
        sub.set_defaults(handler=handler)
    clusters_list = cluster_commands.add_parser("list", help="clusters by name")
    page_args(clusters_list)
    connection_args(clusters_list)
    clusters_list.set_defaults(handler=cmd_clusters_list)
