"""Whether a topology request may be registered, optionally on a given cluster, before anything is stored.

The planner decides validity (``TopologyRequest.validate``); this module only adds what the registry knows
and the planner does not: the registered cluster's shape, which replaces (or must agree with) the request's
own ``cluster``, and the cluster's size. Capacity (the GPUs *other* jobs hold) is checked later, inside the
locked write transaction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from meshctx.plan import ClusterShape
from meshctx.plan.request import TopologyRequest

from .errors import InvalidTopologyError
from .models import Cluster


@dataclass(frozen=True)
class Admission:
    request: dict[str, Any]
    plan: dict[str, Any]
    fingerprint: str
    gpus: int


def _problem(code: str, fields: tuple[str, ...], message: str, hint: str) -> dict[str, object]:
    return {"code": code, "severity": "error", "fields": list(fields), "message": message, "hint": hint}


def _shape_problems(request: TopologyRequest, cluster: Cluster) -> list[dict[str, object]]:
    problems = []
    given = request.cluster
    if given is not None and (given.gpus_per_node, given.nvlink_domain) != (
        cluster.gpus_per_node,
        cluster.nvlink_domain,
    ):
        problems.append(
            _problem(
                "cluster_shape_mismatch",
                ("cluster.gpus_per_node", "cluster.nvlink_domain"),
                f"The request describes {given.gpus_per_node} GPUs per node (NVLink domain {given.nvlink_domain}), "
                f"but cluster {cluster.name!r} is registered with {cluster.gpus_per_node} "
                f"(NVLink domain {cluster.nvlink_domain}).",
                "Leave cluster out of the request (the registered shape is used) or make it match.",
            )
        )
    if request.nproc_per_node is not None and request.nproc_per_node > cluster.gpus_per_node:
        problems.append(
            _problem(
                "nproc_exceeds_gpus_per_node",
                ("nproc_per_node",),
                f"nproc_per_node {request.nproc_per_node} is more than the {cluster.gpus_per_node} GPUs per node "
                f"of cluster {cluster.name!r}.",
                f"Use nproc_per_node ≤ {cluster.gpus_per_node} and more nodes.",
            )
        )
    return problems


def admit(request: TopologyRequest, cluster: Cluster | None) -> Admission:
    """The plan to store, or ``InvalidTopologyError`` with every problem (planner's and cluster's) at once."""
    submitted = request
    problems: list[dict[str, object]] = []
    if isinstance(request.nnodes, str) and ":" in request.nnodes:
        problems.append(
            _problem(
                "elastic_range_not_registrable",
                ("nnodes",),
                f"nnodes {request.nnodes!r} is a range; a registered job has one world size, which its "
                f"fingerprint depends on.",
                "Register the node count the job launches with; register again (If-Match) when it rescales.",
            )
        )
    if cluster is not None:
        problems += _shape_problems(request, cluster)
        shape = ClusterShape(gpus_per_node=cluster.gpus_per_node, nvlink_domain=cluster.nvlink_domain)
        request = dataclasses.replace(request, cluster=request.cluster or shape)
    report = request.validate()
    wire = report.to_dict()
    problems = [p for p in wire["problems"]] + problems  # type: ignore[attr-defined]
    plan = report.plan
    if plan is not None and cluster is not None:
        highest = max(plan.ranks) + 1 if plan.ranks is not None else plan.world_size
        capacity = cluster.nodes * cluster.gpus_per_node
        if highest > capacity:
            problems.append(
                _problem(
                    "cluster_too_small",
                    ("world_size", "ranks") if plan.ranks is not None else ("world_size",),
                    f"The job needs {highest} GPUs (ranks 0..{highest - 1} in launcher order) but cluster "
                    f"{cluster.name!r} has only {capacity} ({cluster.nodes} nodes × {cluster.gpus_per_node}).",
                    f"Use a world size of at most {capacity}, or a larger cluster.",
                )
            )
    if problems or plan is None:
        wire["valid"] = False
        wire["problems"] = problems
        wire["plan"] = None
        raise InvalidTopologyError(problems, wire)
    return Admission(
        request=submitted.to_dict(),
        plan=wire["plan"],  # type: ignore[arg-type]
        fingerprint=plan.fingerprint(),
        gpus=plan.world_size,
    )
