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

    Args:
        strategy: ``"fsdp2"``, ``"megatron_fsdp"`` (or an alias) or ``"ddp"``, or a ``Strategy``.
        sizes: the parallel sizes; unset ones count as 1, and dp is inferred when ``dp_size`` is None.
        world_size: the number of ranks (or give ``nnodes`` and ``nproc_per_node``, or ``ranks``).
        nnodes: nodes, as a count or an elastic range ``"MIN:MAX"`` / ``(MIN, MAX)``.
        nproc_per_node: processes (one a GPU) per node.
        ranks: the global ranks of a subset world, in mesh order.
        cluster: GPUs per node and NVLink domain, for the node-spanning warnings.
        model: heads, experts, layers, sequence and batch sizes, checked against the sizes.
        suggest: whether to compute nearby valid sizes for an invalid request.
        cp_ring_degree: NeMo's ring share of cp.
        cp_ulysses_degree: NeMo's Ulysses share of cp (None: cp / cp_ring_degree).

    Returns:
        A ``ValidationReport``: ``valid``, every problem and warning, ``suggestions`` and the ``plan``
        (None when invalid); for a range of node counts, a verdict for each world size.
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
    """The layout of a valid topology; raises ``TopologyError`` carrying every problem otherwise.

    Args:
        strategy, sizes, world_size, ranks, cluster, model, cp_ring_degree, cp_ulysses_degree: as for
            ``validate_topology`` (one world size: no elastic range here).

    Returns:
        The ``MeshPlan``: mesh shapes, flattened axes, the MoE mesh, every axis's layout and the fingerprint.

    Raises:
        TopologyError: the topology is invalid; ``problems`` holds every problem found.
    """
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
