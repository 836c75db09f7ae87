"""The planner's entry points, with keyword arguments: ``validate_topology`` never raises, ``plan_mesh`` raises
``TopologyError``. Both build one ``TopologyRequest``, whose ``validate`` runs the steps."""

from __future__ import annotations

from collections.abc import Sequence

from .cluster import ClusterShape
from .mesh_plan import MeshPlan
from .model import ModelShape
from .report import ValidationReport
from .request import TopologyRequest
from .sizes import ParallelismSizes
from .strategies import StrategyLike


def validate_topology(
    strategy: StrategyLike,
    sizes: ParallelismSizes | None = None,
    *,
    world_size: int | None = None,
    nnodes: int | str | tuple[int, int] | None = None,
    nproc_per_node: int | None = None,
    ranks: Sequence[int] | None = None,
    cluster: ClusterShape | None = None,
    model: ModelShape | None = None,
    suggest: bool = True,
    cp_ring_degree: int = 1,
    cp_ulysses_degree: int | None = None,
) -> ValidationReport:
    """Check a topology request and lay it out; reports every problem at once and never raises.

    The world is ``world_size`` ranks, or ``nnodes × nproc_per_node`` (``nnodes`` may be a range
    ``"MIN:MAX"`` for elastic jobs, which checks every node count in it), or the ``ranks`` subset.
    Without a cluster shape, ``nproc_per_node`` is taken as the GPUs per node. ``cp_ring_degree`` ×
    ``cp_ulysses_degree`` must split cp (NeMo 0.7.0's context-parallel decomposition).
    """
    request = TopologyRequest(
        strategy=strategy,
        sizes=sizes if sizes is not None else ParallelismSizes(),
        world_size=world_size,
        nnodes=nnodes,
        nproc_per_node=nproc_per_node,
        ranks=ranks,
        cluster=cluster,
        model=model,
        cp_ring_degree=cp_ring_degree,
        cp_ulysses_degree=cp_ulysses_degree,
    )
    return request.validate(suggest=suggest)


def plan_mesh(
    strategy: StrategyLike,
    sizes: ParallelismSizes | None = None,
    *,
    world_size: int | None = None,
    ranks: Sequence[int] | None = None,
    cluster: ClusterShape | None = None,
    model: ModelShape | None = None,
    cp_ring_degree: int = 1,
    cp_ulysses_degree: int | None = None,
) -> MeshPlan:
    """The layout of a valid topology; raises ``TopologyError`` carrying every problem otherwise."""
    report = validate_topology(
        strategy,
        sizes,
        world_size=world_size,
        ranks=ranks,
        cluster=cluster,
        model=model,
        suggest=False,
        cp_ring_degree=cp_ring_degree,
        cp_ulysses_degree=cp_ulysses_degree,
    )
    return report.raise_for_problems()
