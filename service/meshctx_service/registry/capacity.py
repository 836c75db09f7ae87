"""Whether a job fits a cluster: its shape and size before anything is stored, its free GPUs inside the write.

The planner decides validity (``TopologyRequest.validate``); this module only adds what the registry knows
and the planner does not: the registered cluster's shape, which replaces (or must agree with) the request's
own ``cluster``, the cluster's size, and the GPUs *other* active jobs hold on it (checked by ``check_free``
inside the locked write transaction, see ``transactions.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

from meshctx.plan import ClusterShape, MeshPlan
from meshctx.plan.problems import Code, Problem
from meshctx.plan.request import TopologyRequest

from .errors import CapacityError, InvalidTopologyError


class ClusterShapeRow(Protocol):
    """What the checks read of a cluster: an ORM ``Cluster`` or a Core row of ``clusters``."""

    @property
    def name(self) -> str: ...
    @property
    def nodes(self) -> int: ...
    @property
    def gpus_per_node(self) -> int: ...
    @property
    def nvlink_domain(self) -> int | None: ...


@dataclass(frozen=True)
class Fit:
    """What to store for a job that fits: its request and plan as sent on the wire, and the GPUs it holds."""

    request: dict[str, Any]
    plan: dict[str, Any]
    fingerprint: str
    gpus: int
    mesh: MeshPlan | None = field(default=None, compare=False)  # the plan itself, to place an allocation on


def _shape_problems(request: TopologyRequest, cluster: ClusterShapeRow) -> list[Problem]:
    problems = []
    given = request.cluster
    if given is not None and (given.gpus_per_node, given.nvlink_domain) != (
        cluster.gpus_per_node,
        cluster.nvlink_domain,
    ):
        problems.append(
            Problem.error(
                Code.CLUSTER_SHAPE_MISMATCH,
                ("cluster.gpus_per_node", "cluster.nvlink_domain"),
                f"The request describes {given.gpus_per_node} GPUs per node (NVLink domain {given.nvlink_domain}), "
                f"but cluster {cluster.name!r} is registered with {cluster.gpus_per_node} "
                f"(NVLink domain {cluster.nvlink_domain}).",
                "Leave cluster out of the request (the registered shape is used) or make it match.",
            )
        )
    if request.nproc_per_node is not None and request.nproc_per_node > cluster.gpus_per_node:
        problems.append(
            Problem.error(
                Code.NPROC_EXCEEDS_GPUS_PER_NODE,
                ("nproc_per_node",),
                f"nproc_per_node {request.nproc_per_node} is more than the {cluster.gpus_per_node} GPUs per node "
                f"of cluster {cluster.name!r}.",
                f"Use nproc_per_node ≤ {cluster.gpus_per_node} and more nodes.",
            )
        )
    return problems


def fit(request: TopologyRequest, cluster: ClusterShapeRow | None) -> Fit:
    """The plan to store, or ``InvalidTopologyError`` with every problem (planner's and cluster's) at once."""
    submitted = request
    problems: list[Problem] = []
    if isinstance(request.nnodes, str) and ":" in request.nnodes:
        problems.append(
            Problem.error(
                Code.ELASTIC_RANGE_NOT_REGISTRABLE,
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
    plan = report.plan
    if plan is not None and cluster is not None:
        highest = max(plan.ranks) + 1 if plan.ranks is not None else plan.world_size
        capacity = cluster.nodes * cluster.gpus_per_node
        if highest > capacity:
            problems.append(
                Problem.error(
                    Code.CLUSTER_TOO_SMALL,
                    ("world_size", "ranks") if plan.ranks is not None else ("world_size",),
                    f"The job needs {highest} GPUs (ranks 0..{highest - 1} in launcher order) but cluster "
                    f"{cluster.name!r} has only {capacity} ({cluster.nodes} nodes × {cluster.gpus_per_node}).",
                    f"Use a world size of at most {capacity}, or a larger cluster.",
                )
            )
    # The planner also reports nproc_exceeds_gpus_per_node (against the shape given it): keep the registry's
    # message, which names the cluster, once.
    own = {p.code for p in problems}
    found = [p.to_dict() for p in (*(p for p in report.problems if p.code not in own), *problems)]
    if found or plan is None:
        raise InvalidTopologyError(found, report.to_dict() | {"valid": False, "problems": found, "plan": None})
    return Fit(
        request=submitted.to_dict(),
        plan=plan.to_dict(),
        fingerprint=plan.fingerprint(),
        gpus=plan.world_size,
        mesh=plan,
    )


def check_free(cluster: ClusterShapeRow, held: int, needed: int) -> None:
    """``CapacityError`` unless the cluster's GPUs cover those its other active jobs hold plus ``needed``."""
    capacity = cluster.nodes * cluster.gpus_per_node
    if held + needed > capacity:
        raise CapacityError(cluster.name, capacity, held, needed)
