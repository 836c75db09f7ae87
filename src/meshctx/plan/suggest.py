"""Nearest valid size sets for an invalid request, keeping what the user fixed where possible.

Candidates change one or two degrees of the request (to nearby divisors of the world size), or
let dp be inferred; each is checked with the same rules as the request. They are ranked by how
much they change: leaving dp to inference is cheapest, moving a degree the user set explicitly
costs most, and a bigger jump costs more than a small one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import combinations
from math import log2

from .arith import divisors, nearest
from .model import ModelShape, model_problems
from .rules import check_sizes
from .sizes import SIZE_BY_NAME, SIZE_TABLE, ParallelismSizes, ResolvedSizes
from .strategies import RULES, Strategy

#: The degrees a suggestion may move; dp is inferred (or kept) rather than moved.
DEGREES: tuple[str, ...] = tuple(f.name for f in SIZE_TABLE if f.name != "dp_size")


@dataclass(frozen=True)
class Suggestion:
    sizes: ParallelismSizes
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"sizes": self.sizes.to_dict(), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Suggestion:
        return cls(ParallelismSizes(**data["sizes"]), str(data["reason"]))  # type: ignore[arg-type]


def _degree(value: int | None) -> int:
    return value if value is not None else 1


def _cost(request: ParallelismSizes, candidate: ParallelismSizes) -> float:
    cost = 0.0
    for field in DEGREES:
        old, new = _degree(getattr(request, field)), _degree(getattr(candidate, field))
        if old != new:
            explicit = getattr(request, field) is not None and old > 1
            cost += (2.0 if explicit else 1.0) + abs(log2(new) - log2(old))
    if request.dp_size != candidate.dp_size:
        cost += 0.5
    return cost


def _reason(request: ParallelismSizes, candidate: ParallelismSizes, resolved: ResolvedSizes) -> str:
    changes, kept = [], []
    for field in DEGREES:
        old, new = _degree(getattr(request, field)), _degree(getattr(candidate, field))
        if old != new:
            changes.append(f"{SIZE_BY_NAME[field].axis} {old}→{new}")
        elif new > 1:
            kept.append(f"{SIZE_BY_NAME[field].axis}={new}")
    if candidate.dp_size is not None:
        kept.append(f"dp={resolved.dp}")
    elif request.dp_size is None:
        changes.append(f"infer dp={resolved.dp}")
    elif request.dp_size != resolved.dp:
        changes.append(f"dp {request.dp_size}→{resolved.dp}")
    else:
        changes.append(f"infer dp={resolved.dp} instead of fixing it")
    parts = changes
    text = "; ".join(parts)
    if kept:
        text += f" (keeps {', '.join(kept)})"
    return text


def suggest_sizes(
    strategy: Strategy,
    request: ParallelismSizes,
    world: int,
    *,
    model: ModelShape | None = None,
    limit: int = 5,
    accept: Callable[[ParallelismSizes], bool] | None = None,
) -> list[Suggestion]:
    """Up to ``limit`` valid size sets near ``request`` for ``world`` ranks, best first. ``accept`` checks a
    candidate against the whole request (ranks, cp degrees, …): only sets that fix every problem are offered."""
    base = request
    unsupported = RULES[strategy].unsupported
    for field in unsupported:
        if _degree(getattr(base, field)) > 1:
            base = replace(base, **{field: None if SIZE_BY_NAME[field].optional else 1})  # type: ignore[arg-type]
    supported = [f for f in DEGREES if f not in unsupported]
    # Prefer moving only the degrees the user turned on: enabling EP or CP on their behalf is rarely a fix.
    explicit = [f for f in supported if _degree(getattr(base, f)) > 1]
    found = _accepted(_ranked(strategy, request, base, explicit, world, model), accept, limit)
    if not found and explicit != supported:
        found = _accepted(_ranked(strategy, request, base, supported, world, model), accept, limit)
    return found


def _accepted(
    ranked: list[Suggestion], accept: Callable[[ParallelismSizes], bool] | None, limit: int
) -> list[Suggestion]:
    out: list[Suggestion] = []
    for suggestion in ranked:
        if len(out) == limit:
            break
        if accept is None or accept(suggestion.sizes):
            out.append(suggestion)
    return out


def _ranked(
    strategy: Strategy,
    request: ParallelismSizes,
    base: ParallelismSizes,
    movable: list[str],
    world: int,
    model: ModelShape | None,
) -> list[Suggestion]:
    options = divisors(world)
    candidates: list[ParallelismSizes] = [base, replace(base, dp_size=None)]
    for field in movable:
        for value in nearest(options, _degree(getattr(base, field)), 6):
            for dp in dict.fromkeys((base.dp_size, None)):
                candidates.append(replace(base, **{field: value, "dp_size": dp}))  # type: ignore[arg-type]
    for first, second in combinations(movable, 2):
        for a in nearest(options, _degree(getattr(base, first)), 4):
            for b in nearest(options, _degree(getattr(base, second)), 4):
                candidates.append(replace(base, **{first: a, second: b, "dp_size": None}))  # type: ignore[arg-type]

    best: dict[ResolvedSizes, tuple[float, str, Suggestion]] = {}
    for candidate in candidates:
        if candidate.dp_replicate_size == 1 and request.dp_replicate_size is None:
            candidate = replace(candidate, dp_replicate_size=None)
        resolved, _ = check_sizes(strategy, candidate, world)
        if resolved is None:
            continue
        if model is not None and model_problems(
            model, tp=resolved.tp, pp=resolved.pp, cp=resolved.cp, ep=resolved.ep, dp=resolved.dp
        ):
            continue
        if candidate == request:
            continue
        cost = _cost(request, candidate)
        reason = _reason(request, candidate, resolved)
        known = best.get(resolved)
        if known is None or (cost, reason) < known[:2]:
            best[resolved] = (cost, reason, Suggestion(candidate, reason))
    ranked = sorted(best.values(), key=lambda entry: entry[:2])
    return [entry[2] for entry in ranked]
