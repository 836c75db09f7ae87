"""The placement result in its JSON shape (docs/placement.md): the order, per-axis crossings, bounds and baselines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .scheduler_orders import Launch
from .topology import TIER_NAMES


@dataclass(frozen=True, slots=True)
class Crossing:
    """Groups of one axis whose ranks sit in more than one unit of each tier."""

    node: int
    nvlink_domain: int
    leaf: int
    spine: int

    @classmethod
    def of(cls, row: Sequence[int]) -> Crossing:
        return cls(*row)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.node, self.nvlink_domain, self.leaf, self.spine)

    def to_dict(self) -> dict[str, int]:
        return dict(zip(TIER_NAMES, self.as_tuple()))


@dataclass(frozen=True, slots=True)
class AxisPlacement:
    groups: int
    crossing: Crossing
    lower_bound: Crossing

    def to_dict(self) -> dict[str, object]:
        return {"groups": self.groups, "crossing": self.crossing.to_dict(), "lower_bound": self.lower_bound.to_dict()}


#: The orders every placement is compared against: what torchrun's c10d rendezvous (hostname string
#: order) and Slurm's node list (natural order) would give, and nodes sorted by their units (spine, leaf,
#: NVLink domain, then natural name: the order a topology-aware scheduler such as Kueue TAS fills).
BASELINES: tuple[str, ...] = ("lexicographic", "natural", "topology")


@dataclass(frozen=True, slots=True)
class Gap:
    """The first entry of the objective where the order's crossings exceed the lower bound; up to it, the
    order is proven optimal (every earlier entry sits at its bound)."""

    axis: str
    tier: str
    crossing: int
    lower_bound: int

    def to_dict(self) -> dict[str, object]:
        return {"axis": self.axis, "tier": self.tier, "crossing": self.crossing, "lower_bound": self.lower_bound}


@dataclass(frozen=True, slots=True)
class Search:
    """How the order was found and what is proven about it."""

    mode: str
    """``default`` (bounded: a few hierarchical orders, exact search up to a budget) or ``exhaustive``."""
    optimal: bool
    """The objective vector is the lexicographic optimum: it equals the lower bound entry by entry, or the
    exact search finished."""
    proof: str | None
    """``lower bound``, ``exact search`` or null (not proven)."""
    orders: int
    """Distinct hierarchical orders evaluated."""
    explored: int
    """Assignments tried by the exact search (0 when it did not run)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "optimal": self.optimal,
            "proof": self.proof,
            "orders": self.orders,
            "explored": self.explored,
        }


@dataclass(frozen=True, slots=True)
class Placement:
    """Node rank ``i`` runs on ``order[i]``; rank ``r`` on ``order[r // gpus_per_node]``. ``axes`` and
    each baseline list the axes in objective order (tp, cp, ep, ...)."""

    order: tuple[str, ...]
    gpus_per_node: int
    axes: Mapping[str, AxisPlacement]
    baselines: Mapping[str, Mapping[str, Crossing]]
    launch: Launch
    search: Search = Search("default", False, None, 0, 0)
    gap: Gap | None = None
    warnings: tuple[str, ...] = ()

    @property
    def optimal(self) -> bool:
        return self.search.optimal

    def vector(self) -> tuple[int, ...]:
        """The objective: crossing counts of every axis in priority order, fastest tier first."""
        return tuple(c for entry in self.axes.values() for c in entry.crossing.as_tuple())

    def to_dict(self) -> dict[str, object]:
        return {
            "order": list(self.order),
            "gpus_per_node": self.gpus_per_node,
            "axes": {axis: entry.to_dict() for axis, entry in self.axes.items()},
            "baselines": {
                name: {axis: {"crossing": c.to_dict()} for axis, c in rows.items()}
                for name, rows in self.baselines.items()
            },
            "launch": self.launch.to_dict(),
            "optimal": self.search.optimal,
            "gap": self.gap.to_dict() if self.gap is not None else None,
            "search": self.search.to_dict(),
            "warnings": list(self.warnings),
        }
