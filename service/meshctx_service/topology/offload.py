"""Which planning requests leave the event loop: ``heavy`` sends anything that may take more than about a
millisecond to the work pool (``http/work.py``). The limits every planning route applies first (docs/contract.md
"Bounded work") are ``meshctx.integrations.limits`` (``Settings.limits``)."""

from __future__ import annotations

from meshctx.plan import parse_nnodes
from meshctx.plan.request import TopologyRequest

#: Requests planning at most this many world sizes, on no more ranks than this, run inline on the event loop:
#: they take well under a millisecond (bench/bench_plan.py); anything bigger goes to the work pool.
INLINE_WORLDS = 8
INLINE_RANKS = 4096


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
