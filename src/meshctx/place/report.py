"""The placement result in its JSON shape (docs/placement.md): the order, per-axis crossings, bounds and baselines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .launch import Launch
from .topology import TIER_NAMES


@dataclass(frozen=True)
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

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Crossing:
        return cls(*(int(data[t]) for t in TIER_NAMES))  # type: ignore[call-overload]


@dataclass(frozen=True)
class AxisPlacement:
    groups: int
    crossing: Crossing
    lower_bound: Crossing

    def to_dict(self) -> dict[str, object]:
        return {"groups": self.groups, "crossing": self.crossing.to_dict(), "lower_bound": self.lower_bound.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AxisPlacement:
        return cls(
            int(data["groups"]),  # type: ignore[call-overload]
            Crossing.from_dict(data["crossing"]),  # type: ignore[arg-type]
            Crossing.from_dict(data["lower_bound"]),  # type: ignore[arg-type]
        )


#: The orders every placement is compared against: what torchrun's c10d rendezvous (hostname string
#: order) and Slurm's node list (natural order) would give.
BASELINES: tuple[str, ...] = ("lexicographic", "natural")


@dataclass(frozen=True)
class Placement:
    """Node rank ``i`` runs on ``order[i]``; rank ``r`` on ``order[r // gpus_per_node]``. ``axes`` and
    each baseline list the axes in objective order (tp, cp, ep, ...)."""

    order: tuple[str, ...]
    gpus_per_node: int
    axes: Mapping[str, AxisPlacement]
    baselines: Mapping[str, Mapping[str, Crossing]]
    launch: Launch

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
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Placement:
        baselines = data["baselines"]
        return cls(
            order=tuple(str(h) for h in data["order"]),  # type: ignore[attr-defined]
            gpus_per_node=int(data["gpus_per_node"]),  # type: ignore[call-overload]
            axes={str(k): AxisPlacement.from_dict(v) for k, v in data["axes"].items()},  # type: ignore[attr-defined]
            baselines={
                str(name): {str(axis): Crossing.from_dict(entry["crossing"]) for axis, entry in rows.items()}
                for name, rows in baselines.items()  # type: ignore[attr-defined]
            },
            launch=Launch.from_dict(data["launch"]),  # type: ignore[arg-type]
        )
