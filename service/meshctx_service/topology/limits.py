"""The limits every route that plans applies before any arithmetic (DESIGN "Bounded work").

One ``Limits`` value, made from ``Settings``, answers for validate, layout, render, job registration, the
Kubernetes webhook and the SkyPilot policy alike: the largest world, the widest elastic range, the largest
integer, and how big a listing may get. ``errors`` names each offending field with its numbers and a fix;
``heavy`` says which requests leave the event loop for the work pool.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from meshctx.plan import parse_nnodes
from meshctx.plan.request import TopologyRequest

from ..http.wire import MAX_INT
from ..settings import Settings

#: Requests planning at most this many world sizes, on no more ranks than this, run inline on the event loop:
#: they take well under a millisecond (bench/bench_plan.py); anything bigger goes to the work pool.
INLINE_WORLDS = 8
INLINE_RANKS = 4096


@dataclass(frozen=True)
class Limits:
    max_world_size: int
    max_nnodes_span: int
    max_listed_world_size: int
    max_int: int = MAX_INT

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_world_size=settings.max_world_size,
            max_nnodes_span=settings.max_nnodes_span,
            max_listed_world_size=settings.max_listed_world_size,
        )

    def errors(self, request: TopologyRequest) -> list[tuple[str, str]]:
        """``(field, detail)`` for every limit ``request`` exceeds; empty when the planner may take it."""
        errors = [
            (field, f"{field} {value} exceeds {self.max_int}; use an integer below 2^31")
            for field, value in _integers(request)
            if value > self.max_int
        ]
        world = self.max_world_size
        if request.world_size is not None and request.world_size > world:
            errors.append(("world_size", f"world_size {request.world_size} exceeds {world} (MESHCTX_MAX_WORLD_SIZE)"))
        if request.ranks is not None and len(request.ranks) > world:
            errors.append(("ranks", f"{len(request.ranks)} ranks exceed {world} (MESHCTX_MAX_WORLD_SIZE)"))
        node_range = parse_nnodes(request.nnodes) if request.nnodes is not None else None
        if node_range is not None:
            low, high = node_range
            per_node = request.nproc_per_node
            if per_node is not None and per_node > 0 and high * per_node > world:
                errors.append(
                    (
                        "nnodes",
                        f"nnodes {high} × nproc_per_node {per_node} = {high * per_node} exceeds the largest world "
                        f"size {world} (MESHCTX_MAX_WORLD_SIZE); use at most {max(world // per_node, 1)} nodes",
                    )
                )
            if high - low + 1 > self.max_nnodes_span:
                errors.append(
                    (
                        "nnodes",
                        f"range {low}:{high} spans {high - low + 1} node counts, more than {self.max_nnodes_span} "
                        "(MESHCTX_MAX_NNODES_SPAN); split it into narrower ranges",
                    )
                )
        return errors

    def listing_error(self, world_size: int) -> tuple[str, str] | None:
        """Why ``groups=true`` is refused for ``world_size`` ranks, if it is."""
        if world_size <= self.max_listed_world_size:
            return None
        return (
            "groups",
            f"listing every group of {world_size} ranks is refused above {self.max_listed_world_size} ranks "
            "(MESHCTX_MAX_LISTED_WORLD_SIZE); ask for one rank's view with rank=N",
        )


def heavy(request: TopologyRequest) -> bool:
    """Whether planning ``request`` may take more than about a millisecond (then it runs in the work pool)."""
    node_range = parse_nnodes(request.nnodes) if request.nnodes is not None else None
    if node_range is not None and node_range[1] - node_range[0] + 1 > INLINE_WORLDS:
        return True
    if request.ranks is not None:
        return len(request.ranks) > INLINE_RANKS
    # Where a node or NVLink domain is not a power of two, groups may straddle units unevenly and the
    # cluster report counts them group by group (bounded, but milliseconds at large worlds).
    per_node = request.nproc_per_node if isinstance(request.nproc_per_node, int) else 1
    world = request.world_size or (node_range[1] * per_node if node_range else 0)
    units = (request.cluster.gpus_per_node, request.cluster.nvlink_domain) if request.cluster else (per_node,)
    return world > INLINE_RANKS and any(isinstance(u, int) and u > 0 and u & (u - 1) for u in units)


def _integers(request: TopologyRequest) -> Iterator[tuple[str, int]]:
    """Every integer of the request with its field name (ranks only by their largest, which names the rank)."""
    scalars: Sequence[tuple[str, object]] = [
        ("world_size", request.world_size),
        ("nnodes", request.nnodes),
        ("nproc_per_node", request.nproc_per_node),
        *((f"sizes.{k}", v) for k, v in request.sizes.to_dict().items()),
        *(((f"cluster.{k}", v) for k, v in request.cluster.to_dict().items()) if request.cluster else ()),
        *(((f"model.{k}", v) for k, v in request.model.to_dict().items()) if request.model else ()),
    ]
    for field, value in scalars:
        if isinstance(value, int) and not isinstance(value, bool):
            yield field, value
    if request.ranks:
        largest = max(request.ranks)
        if largest > MAX_INT:
            yield f"ranks[{request.ranks.index(largest)}]", largest
