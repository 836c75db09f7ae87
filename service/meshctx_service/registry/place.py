"""A cluster's physical topology, checked against its registered shape, and a job's allocation placed on it.

The registry stores the meshctx topology JSON (``meshctx.place.Topology``) with a cluster so that jobs and
``POST /v1/place`` can name the cluster instead of sending its nodes; a job that names its allocation
(``nodes``) keeps the placement summary: the node order and, per axis, its crossings and lower bounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meshctx.place import Topology, place
from meshctx.place.hostlist import expand_hosts
from meshctx.place.problems import PlacementError
from meshctx.plan import MeshPlan

from .errors import InvalidInputError, InvalidPlacementError

#: The most nodes a topology or an allocation may name when the caller gives no limit (the service passes
#: ``MESHCTX_MAX_PLACE_NODES``).
MAX_NODES = 16384


def checked_topology(
    data: Mapping[str, Any], *, nodes: int, gpus_per_node: int, max_nodes: int = MAX_NODES
) -> dict[str, Any]:
    """``data`` as the normalized topology JSON to store, or ``InvalidInputError`` naming ``topology`` with every
    disagreement with the cluster's shape (node count, GPUs per node)."""
    entries = data.get("nodes") if isinstance(data, Mapping) else None
    if isinstance(entries, list) and len(entries) > max_nodes:
        raise InvalidInputError(
            [
                (
                    "topology.nodes",
                    f"{len(entries)} nodes exceed the {max_nodes} this service places (MESHCTX_MAX_PLACE_NODES)",
                )
            ]
        )
    try:
        topology = Topology.from_dict(data)
    except ValueError as error:
        raise InvalidInputError([("topology", str(error))]) from None
    errors: list[tuple[str, str]] = []
    if len(topology.nodes) != nodes:
        errors.append(
            (
                "topology.nodes",
                f"lists {len(topology.nodes)} nodes but the cluster has nodes={nodes}; "
                f"make them agree (set nodes to {len(topology.nodes)} or fix the topology).",
            )
        )
    other = sorted({n.name for n in topology.nodes if n.gpus != gpus_per_node})
    if other:
        shown = ", ".join(other[:8]) + (f", … ({len(other)} in all)" if len(other) > 8 else "")
        errors.append(
            (
                "topology.nodes.gpus",
                f"every node must have the cluster's gpus_per_node={gpus_per_node} GPUs; these differ: {shown}. "
                "Register nodes of another GPU count as a cluster of their own.",
            )
        )
    if errors:
        raise InvalidInputError(errors)
    return topology.to_dict()


def expanded_nodes(nodes: str | Sequence[str], *, max_nodes: int = MAX_NODES) -> list[str]:
    """The allocation's host names (a hostlist expression or a list), or ``InvalidInputError`` naming ``nodes``."""
    try:
        return expand_hosts(nodes, limit=max_nodes)
    except ValueError as error:
        raise InvalidInputError([("nodes", str(error))]) from None


def placement_summary(plan: MeshPlan, topology: Mapping[str, Any], hosts: Sequence[str]) -> dict[str, Any]:
    """The placement to store with a job: ``order`` (node rank i runs on ``order[i]``), ``gpus_per_node`` and
    per axis its groups, crossings and lower bounds; ``InvalidPlacementError`` with every problem otherwise."""
    try:
        placed = place(plan, Topology.from_dict(topology), list(hosts)).to_dict()
    except PlacementError as error:
        raise InvalidPlacementError([p.to_dict() for p in error.problems]) from None
    return {key: placed[key] for key in ("order", "gpus_per_node", "axes")}


def check_host_count(hosts: Sequence[str], nodes: int, gpus_per_node: int, gpus: int) -> None:
    """On a cluster without a topology the allocation is only held, not placed: it must still be able to hold the
    job (its GPUs) and fit the cluster (its node count); ``InvalidInputError`` naming ``nodes`` otherwise."""
    errors = []
    if len(hosts) > nodes:
        errors.append(("nodes", f"{len(hosts)} hosts given but the cluster has {nodes} nodes."))
    if len(hosts) * gpus_per_node < gpus:
        errors.append(
            (
                "nodes",
                f"{len(hosts)} hosts × {gpus_per_node} GPUs = {len(hosts) * gpus_per_node} GPUs cannot hold the "
                f"job's {gpus} ranks; allocate at least {-(-gpus // gpus_per_node)} hosts.",
            )
        )
    if errors:
        raise InvalidInputError(errors)
