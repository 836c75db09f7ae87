"""Hints that name sizes, rewritten from the suggestions once they are known.

A rule sees one constraint at a time: the experts rule alone would propose an ep_size that divides the experts but
not the world. When the request gets suggestions, the hint of each problem that a single size fixes names the
values of that size the suggestion search found (``size_hint``): sizes that fix the whole request when set alone.
Where no single size does, the hint says so and points at the suggestions, which change several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .arith import join_or
from .model import ModelShape
from .problems import Code, Problem
from .sizes import ParallelismSizes
from .suggest import Suggestion, size_hint

#: Problem code → the size its hint proposes.
HINTED: dict[Code, str] = {
    Code.WORLD_SIZE_NOT_DIVISIBLE: "tp_size",
    Code.DP_REPLICATE_NOT_DIVISOR: "dp_replicate_size",
    Code.EP_NOT_DIVISOR: "ep_size",
    Code.HEADS_NOT_DIVISIBLE: "tp_size",
    Code.KV_HEADS_NOT_DIVISIBLE: "tp_size",
    Code.EXPERTS_NOT_DIVISIBLE: "ep_size",
    Code.LAYERS_FEWER_THAN_PP: "pp_size",
}


def _lead(problem: Problem, model: ModelShape | None, world: int) -> str:
    """What the proposed size must satisfy, in words, before the values."""
    code, m = problem.code, model or ModelShape()
    if code is Code.WORLD_SIZE_NOT_DIVISIBLE:  # the rule's first fix (another world size) stays
        return problem.hint.split(", or tp_size")[0].rstrip(".") + ", or"
    if code is Code.HEADS_NOT_DIVISIBLE:
        return f"Use a tp_size that divides num_attention_heads {m.num_attention_heads} and the {world} ranks"
    if code is Code.KV_HEADS_NOT_DIVISIBLE:
        return f"Use a tp_size that divides num_key_value_heads {m.num_key_value_heads} and the {world} ranks"
    if code is Code.EXPERTS_NOT_DIVISIBLE:
        return f"Use an ep_size that divides num_experts {m.num_experts} and the ranks of a pipeline stage"
    if code is Code.LAYERS_FEWER_THAN_PP:
        return f"Use a pp_size of at most num_hidden_layers {m.num_hidden_layers} that divides the {world} ranks"
    if code is Code.EP_NOT_DIVISOR:
        return "Use an ep_size that divides the ranks of a pipeline stage (dp·cp·tp)"
    return "Use a dp_replicate_size that divides dp"


def advised(
    problem: Problem,
    sizes: ParallelismSizes,
    world: int,
    model: ModelShape | None,
    suggestions: Sequence[Suggestion],
) -> Problem:
    """``problem`` with a hint whose sizes come from ``suggestions`` (unchanged if its hint names no size)."""
    field = HINTED.get(problem.code)
    if field is None:
        return problem
    values = size_hint(field, sizes, suggestions)
    lead = _lead(problem, model, world)
    if values:
        joiner = " " if lead.endswith(", or") else ", e.g. "
        return replace(problem, hint=f"{lead}{joiner}{field} {join_or(values)}.")
    where = f"see the suggestions (e.g. {suggestions[0].reason})" if suggestions else "no nearby sizes do"
    if lead.endswith(", or"):
        return replace(problem, hint=f"{lead.removesuffix(', or')}; no {field} alone fixes this ({where}).")
    return replace(problem, hint=f"{lead}; on {world} ranks no {field} alone fixes this: {where}.")
