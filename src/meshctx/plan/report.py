"""What the planner answers: a ``ValidationReport`` (and, for an elastic node range, one verdict a world size)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .encode import dumps
from .mesh_plan import MeshPlan
from .problems import Problem, TopologyError
from .suggest import Suggestion


@dataclass(frozen=True, slots=True)
class WorldSizeVerdict:
    """One world size of an elastic node range."""

    world_size: int
    nnodes: int
    valid: bool
    problems: tuple[Problem, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "world_size": self.world_size,
            "nnodes": self.nnodes,
            "valid": self.valid,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Everything the planner has to say about a request; ``plan`` is ``None`` when it is invalid."""

    valid: bool
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    plan: MeshPlan | None = None
    world_sizes: tuple[WorldSizeVerdict, ...] | None = field(default=None)

    def to_dict(self, *, groups: bool = False) -> dict[str, object]:
        return self._wire(self.plan.to_dict(groups=groups) if self.plan is not None else None)

    def to_json(self) -> bytes:
        """``to_dict()`` as compact JSON (what the service answers), encoded from the plan's kept parts."""
        return dumps(self._wire(self.plan._wire(fresh=False) if self.plan is not None else None))

    def _wire(self, plan: dict[str, object] | None) -> dict[str, object]:
        out: dict[str, object] = {
            "valid": self.valid,
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [p.to_dict() for p in self.warnings],
            "suggestions": [s.to_dict() for s in self.suggestions],
            "plan": plan,
        }
        if self.world_sizes is not None:
            out["world_sizes"] = [w.to_dict() for w in self.world_sizes]
        return out

    def raise_for_problems(self) -> MeshPlan:
        if self.plan is None:
            raise TopologyError(self.problems)
        return self.plan
