"""Nearest valid size sets for an invalid request, keeping what the user fixed where possible.

Candidates change one or two degrees of the request (to nearby divisors of the world size that the model can
take, and, on a known cluster, to the sizes that keep a tp or ep group inside one node), or let dp be inferred;
each is checked with the same rules as the request. They are ranked first by hardware fit (a set whose groups
leave their node or NVLink domain comes after every set that keeps them inside), then by how much they change:
leaving dp to inference is cheapest, moving a degree the user set explicitly costs most, and a bigger jump costs
more than a small one. When no nearby set fixes the request, every divisor is tried before giving up.

The hints of the problems a suggestion fixes name the values these suggestions use (``size_hint``), so a hint
never proposes a size the rules refuse.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from math import log2

from .arith import divisors, is_size, nearest
from .model import ModelShape, model_problems
from .rules import check_sizes
from .sizes import SIZE_BY_NAME, SIZE_TABLE, ParallelismSizes, ResolvedSizes
from .strategies import RULES, Strategy
from .wire import mapping_of

#: The degrees a suggestion may move; dp is inferred (or kept) rather than moved.
DEGREES: tuple[str, ...] = tuple(f.name for f in SIZE_TABLE if f.name != "dp_size")


@dataclass(frozen=True, slots=True)
class Suggestion:
    sizes: ParallelismSizes
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"sizes": self.sizes.to_dict(), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Suggestion:
        return cls(ParallelismSizes.from_dict(mapping_of(data["sizes"], "sizes")), str(data["reason"]))


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


#: A candidate's fit: ``None`` when it does not fix the whole request, else the warnings it still gets (groups that
#: leave their node or NVLink domain); 0 is a perfect fit.
Fit = Callable[[ParallelismSizes], "int | None"]
#: Candidates checked past the first ``limit`` that fit perfectly, to find the ones that fit better (bounded work).
EXTRA_CHECKS = 16
#: Values of one degree the last-resort search tries (every divisor, up to this many nearest).
LAST_RESORT = 64


def suggest_sizes(
    strategy: Strategy,
    request: ParallelismSizes,
    world: int,
    *,
    model: ModelShape | None = None,
    limit: int = 5,
    accept: Fit | None = None,
    local: int | None = None,
) -> list[Suggestion]:
    """Up to ``limit`` valid size sets near ``request`` for ``world`` ranks, best first. ``accept`` checks a
    candidate against the whole request (ranks, cp degrees, the cluster, …): only sets that fix every problem are
    offered, those with fewer warnings first. ``local`` is the ranks one node (or NVLink domain) holds, when known:
    tp and ep then also try the sizes that stay inside it."""
    base = request
    unsupported = RULES[strategy].unsupported
    for field in unsupported:
        if _degree(getattr(base, field)) > 1:
            base = base.changed({field: None if SIZE_BY_NAME[field].optional else 1})
    supported = [f for f in DEGREES if f not in unsupported]
    # Prefer moving only the degrees the user turned on: enabling EP or CP on their behalf is rarely a fix.
    explicit = [f for f in supported if _degree(getattr(base, f)) > 1]
    search = _Search(strategy, request, base, world, model, local)
    found = _accepted(search.ranked(explicit, 6, 4), accept, limit)
    if not found and explicit != supported:
        found = _accepted(search.ranked(supported, 6, 4), accept, limit)
    if not found:  # nothing near: every divisor of one degree, wider pairs
        found = _accepted(search.ranked(supported, LAST_RESORT, 8), accept, limit)
    return found


def size_hint(field: str, request: ParallelismSizes, suggestions: Sequence[Suggestion], count: int = 3) -> list[int]:
    """The values of ``field`` that fix the request alone: those of the suggestions that change ``field`` and
    nothing else, in the suggestions' order (at most ``count``)."""
    values: list[int] = []
    for suggestion in suggestions:
        if replace(suggestion.sizes, **{field: getattr(request, field)}) != request:
            continue
        value = getattr(suggestion.sizes, field)
        if value is not None and value not in values:
            values.append(value)
    return values[:count]


def _accepted(ranked: list[Suggestion], accept: Fit | None, limit: int) -> list[Suggestion]:
    """The first ``limit`` candidates that fix the request, those that fit the hardware first: after ``limit``
    perfect fits the walk stops; otherwise it looks ``EXTRA_CHECKS`` further for better-fitting ones."""
    fitting: list[tuple[int, int, Suggestion]] = []
    perfect = checked = 0
    for index, suggestion in enumerate(ranked):
        if perfect == limit or (len(fitting) >= limit and checked >= limit + EXTRA_CHECKS):
            break
        fit = accept(suggestion.sizes) if accept is not None else 0
        if fit is None:
            continue
        checked += 1
        perfect += fit == 0
        fitting.append((min(fit, 1), index, suggestion))
    return [entry[2] for entry in sorted(fitting, key=lambda entry: entry[:2])[:limit]]


@dataclass(frozen=True, slots=True)
class _Search:
    """The candidate sets around one request."""

    strategy: Strategy
    request: ParallelismSizes
    base: ParallelismSizes
    world: int
    model: ModelShape | None
    local: int | None
    _options: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    def options(self, field: str) -> list[int]:
        """The divisors of the world that ``field`` may take with this model (tp divides the heads, ep the
        experts, pp at most the layers); computed once a field."""
        known = self._options.get(field)
        if known is None:
            known = self._options[field] = self._allowed(field)
        return known

    def _allowed(self, field: str) -> list[int]:
        model = self.model
        bounds: list[int | None] = []
        if model is not None and field == "tp_size":
            bounds = [model.num_attention_heads, model.num_key_value_heads]
        elif model is not None and field == "ep_size":
            bounds = [model.num_experts]
        out = [d for d in divisors(self.world) if all(not is_size(b) or b % d == 0 for b in bounds)]
        layers = model.num_hidden_layers if model is not None and field == "pp_size" else None
        return [d for d in out if d <= layers] if is_size(layers) else out

    def near(self, field: str, count: int) -> list[int]:
        """The ``count`` options nearest the request's value, and, for tp and ep on a known node size, every
        option that keeps the group inside one node."""
        options = self.options(field)
        out = nearest(options, _degree(getattr(self.base, field)), count)
        if self.local is not None and field in ("tp_size", "ep_size"):
            out += [d for d in options if self.local % d == 0 and d not in out]
        return out

    def ranked(self, movable: list[str], singles: int, pairs: int) -> list[Suggestion]:
        base = self.base
        candidates: list[ParallelismSizes] = [base, replace(base, dp_size=None)]
        for field in movable:
            for value in self.near(field, singles):
                for dp in dict.fromkeys((base.dp_size, None)):
                    candidates.append(base.changed({field: value, "dp_size": dp}))
        for first, second in combinations(movable, 2):
            for a in self.near(first, pairs):
                for b in self.near(second, pairs):
                    candidates.append(base.changed({first: a, second: b, "dp_size": None}))
        return _by_cost(self.strategy, self.request, candidates, self.world, self.model)


def _by_cost(
    strategy: Strategy,
    request: ParallelismSizes,
    candidates: list[ParallelismSizes],
    world: int,
    model: ModelShape | None,
) -> list[Suggestion]:

    best: dict[ResolvedSizes, tuple[float, str, Suggestion]] = {}
    for candidate in dict.fromkeys(candidates):
        if candidate.dp_replicate_size == 1 and request.dp_replicate_size is None:
            candidate = replace(candidate, dp_replicate_size=None)
        non_dp = _degree(candidate.tp_size) * _degree(candidate.cp_size) * _degree(candidate.pp_size)
        dp = candidate.dp_size
        if (world % non_dp) if dp is None else (dp * non_dp != world):  # refused by check_sizes: skip its words
            continue
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
