"""The most work one request may ask of the planner, checked on the ``TopologyRequest`` before any arithmetic
(docs/contract.md "Bounded work"): the largest world, the widest elastic range, the largest integer, and how big a group
listing may get. Every route of the service that plans applies one ``Limits`` made from its settings; the
in-process SkyPilot policy applies the defaults, which are the service's. ``errors`` names each offending field
with its numbers and a fix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

from ..plan import parse_nnodes
from ..plan.cluster import ClusterShape
from ..plan.model import ModelShape
from ..plan.request import TopologyRequest
from ..plan.sizes import SIZE_FIELDS

#: A limit check: the request's (field, detail) pairs that exceed what may be planned; empty when none.
Check = Callable[[TopologyRequest], list[tuple[str, str]]]

#: Every integer a request may hold stays below this, so no request can make the planner factor huge numbers.
MAX_INT = 2**31 - 1
DEFAULT_MAX_WORLD_SIZE = 1 << 24
DEFAULT_MAX_NNODES_SPAN = 1024
DEFAULT_MAX_LISTED_WORLD_SIZE = 1 << 17


@dataclass(frozen=True)
class Limits:
    """The defaults are the service's (``MESHCTX_MAX_WORLD_SIZE`` etc.); the service builds its own from settings."""

    max_world_size: int = DEFAULT_MAX_WORLD_SIZE
    max_nnodes_span: int = DEFAULT_MAX_NNODES_SPAN
    max_listed_world_size: int = DEFAULT_MAX_LISTED_WORLD_SIZE
    max_int: int = MAX_INT

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


#: Where a request holds integers: (field-name prefix, the part's attribute or "" for the request, its fields).
_INTEGER_PARTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("", "", ("world_size", "nnodes", "nproc_per_node")),
    ("sizes.", "sizes", SIZE_FIELDS),
    ("cluster.", "cluster", tuple(f.name for f in fields(ClusterShape))),
    ("model.", "model", tuple(f.name for f in fields(ModelShape))),
)


def _integers(request: TopologyRequest) -> Iterator[tuple[str, int]]:
    """Every integer of the request with its field name (ranks only by their largest, which names the rank)."""
    for prefix, attribute, names in _INTEGER_PARTS:
        part = getattr(request, attribute) if attribute else request
        if part is None:
            continue
        for name in names:
            value = getattr(part, name)
            if isinstance(value, int) and not isinstance(value, bool):
                yield prefix + name, value
    if request.ranks:
        largest = max(request.ranks)
        if largest > MAX_INT:
            yield f"ranks[{request.ranks.index(largest)}]", largest
