"""The topology rules: resolve requested sizes against a world size and report every problem.

One pass collects all problems. A size that is itself invalid is left out of the arithmetic that
depends on it, and an axis the strategy does not support counts as 1 there, so one mistake is
reported once rather than echoed by every later rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from .arith import divisors, is_integer, is_size, join_or, nearest, nearest_multiples
from .problems import Code, Problem
from .sizes import SIZE_TABLE, ParallelismSizes, ResolvedSizes
from .strategies import FEATURE, RULES, Strategy, supporting


def check_ranks(ranks: object, world_size: object) -> tuple[list[int] | None, list[str]]:
    """The rank list if usable, and what is wrong with it."""
    if isinstance(ranks, (str, bytes)) or not isinstance(ranks, Sequence):
        return None, [f"ranks must be a list of global ranks, got {type(ranks).__name__}"]
    issues: list[str] = []
    if not ranks:
        issues.append("ranks is empty")
    not_int = [r for r in ranks if not is_integer(r)]
    if not_int:
        issues.append(f"ranks must be integers, got {not_int[:5]!r}")
        return None, issues
    rank_list: list[int] = list(ranks)
    negative = [r for r in rank_list if r < 0]
    if negative:
        issues.append(f"ranks must be ≥ 0, got {negative[:5]}")
    seen: set[int] = set()
    duplicates: list[int] = []
    for r in rank_list:
        if r in seen and r not in duplicates:
            duplicates.append(r)
        seen.add(r)
    if duplicates:
        issues.append(f"ranks must be unique, {duplicates[:5]} appear more than once")
    if is_size(world_size):
        beyond = [r for r in rank_list if r >= world_size]
        if beyond:
            issues.append(f"ranks must be < world_size {world_size}, got {beyond[:5]}")
    return rank_list, issues


def check_sizes(
    strategy: Strategy,
    sizes: ParallelismSizes,
    world_size: object,
    ranks: object = None,
) -> tuple[ResolvedSizes | None, list[Problem]]:
    """Resolve ``sizes`` for ``strategy`` on ``world_size`` (or ``len(ranks)``) ranks."""
    problems: list[Problem] = []
    value: dict[str, int | None] = {}
    broken: set[str] = set()

    for size_field in SIZE_TABLE:
        field = size_field.name
        raw = getattr(sizes, field)
        if size_field.optional and raw is None:
            value[field] = None
        elif is_size(raw):
            value[field] = raw
        else:
            broken.add(field)
            value[field] = None
            unset = " or leave it unset (null) to infer it" if field == "dp_size" else ""
            problems.append(
                Problem.error(
                    Code.INVALID_SIZE,
                    (field,),
                    f"{field} must be an integer ≥ 1, got {raw!r}.",
                    f"Set {field} to a positive integer such as 1{unset}.",
                )
            )

    # The world: an explicit rank subset, or world_size ranks.
    mesh_size: int | None = None
    if ranks is not None:
        rank_list, issues = check_ranks(ranks, world_size)
        if rank_list is not None:
            mesh_size = len(rank_list) or None
        if issues:
            problems.append(
                Problem.error(
                    Code.INVALID_RANKS,
                    ("ranks",),
                    "; ".join(issues) + ".",
                    "Pass each global rank of the mesh once, as integers from 0 to world_size - 1.",
                )
            )
            mesh_size = None
    world_wrong = None
    if world_size is not None and not is_size(world_size):
        world_wrong = f"world_size must be an integer ≥ 1, got {world_size!r}."
    elif world_size is None and ranks is None:
        world_wrong = "world_size is required (or nnodes and nproc_per_node, or ranks)."
    if world_wrong is not None:
        hint = "Set world_size to the number of ranks, e.g. nnodes × nproc_per_node."
        problems.append(Problem.error(Code.INVALID_SIZE, ("world_size",), world_wrong, hint))
    elif ranks is None and is_size(world_size):
        mesh_size = world_size

    # Axes the strategy cannot use: report once, then count them as 1.
    rules = RULES[strategy]
    for field in rules.unsupported:
        v = value[field]
        if v is not None and v > 1:
            problems.append(
                Problem.error(
                    Code.STRATEGY_UNSUPPORTED_AXIS,
                    (field, "strategy"),
                    f"{strategy.value} does not support {FEATURE[field]}, but {field}={v}.",
                    f"Set {field}=1, or use strategy {join_or(supporting(field))}.",
                )
            )
            value[field] = 1

    tp, pp, cp, ep = (value[f] for f in ("tp_size", "pp_size", "cp_size", "ep_size"))
    replicate = value["dp_replicate_size"] or 1
    if broken & {"tp_size", "pp_size", "cp_size"} or mesh_size is None:
        return None, problems
    assert tp is not None and pp is not None and cp is not None
    world = mesh_size
    world_field = "ranks" if ranks is not None else "world_size"
    non_dp = tp * cp * pp

    # dp: the given value (checked against the world) or the inferred one. Later rules use a given
    # dp even when it mismatches the world, so its own problems are reported too.
    dp: int | None = None
    if "dp_size" in broken:
        pass
    elif value["dp_size"] is not None:
        dp = value["dp_size"]
        assert dp is not None
        if dp * non_dp != world:
            problems.append(_mismatch(strategy, dp, tp, pp, cp, world, world_field))
    elif world % non_dp:
        problems.append(_not_divisible(tp, pp, cp, world, world_field))
    else:
        dp = world // non_dp

    # dp_replicate (and ep) count as 1 where the strategy cannot use them, so these rules hold trivially there.
    if dp is not None and "dp_replicate_size" not in broken:
        if dp % replicate:
            problems.append(
                Problem.error(
                    Code.DP_REPLICATE_NOT_DIVISOR,
                    ("dp_replicate_size", "dp_size"),
                    f"dp_replicate_size {replicate} does not divide dp {dp}, so dp_shard = dp / dp_replicate "
                    "is not an integer.",
                    f"Use a dp_replicate_size that divides {dp}, e.g. "
                    f"{join_or(nearest([d for d in divisors(dp) if d < dp] or [1], replicate))}.",
                )
            )
        elif 1 < replicate == dp:
            proper = [d for d in divisors(dp) if 1 < d < dp]
            smaller = f" or a smaller dp_replicate_size such as {join_or(nearest(proper, replicate))}" if proper else ""
            problems.append(
                Problem.error(
                    Code.DP_REPLICATE_EQUALS_DP,
                    ("dp_replicate_size", "dp_size"),
                    f"dp_replicate_size = dp = {dp} leaves dp_shard = 1: that is pure replication, "
                    "which FSDP2 does not do.",
                    f"Use strategy ddp for pure replication{smaller}, or leave dp_replicate_size unset.",
                )
            )

    if dp is not None and ep is not None and ep > 1:
        span = dp * cp * tp
        if span % ep:
            problems.append(
                Problem.error(
                    Code.EP_NOT_DIVISOR,
                    ("ep_size", "dp_size", "cp_size", "tp_size"),
                    f"ep_size {ep} does not divide dp·cp·tp = {dp}·{cp}·{tp} = {span}, the ranks of one "
                    "pipeline stage that expert parallelism spans.",
                    f"Use an ep_size that divides {span}, e.g. {join_or(nearest(divisors(span), ep))}.",
                )
            )

    if problems or dp is None or ep is None:
        return None, problems
    if rules.pure_replication:
        replicate = dp
    ep_shard = dp * cp * tp // ep if ep > 1 else 1
    return ResolvedSizes(dp, replicate, dp // replicate, tp, pp, cp, ep, ep_shard), problems


def _mismatch(strategy: Strategy, dp: int, tp: int, pp: int, cp: int, world: int, world_field: str) -> Problem:
    product = dp * tp * cp * pp
    non_dp = tp * cp * pp
    if RULES[strategy].mesh_axes is None:  # no mesh: only dp multiplies up to the world
        formula = f"dp = {dp}"
        fields: tuple[str, ...] = ("dp_size", world_field)
    else:
        formula = f"pp·dp·cp·tp = {pp}·{dp}·{cp}·{tp} = {product}"
        fields = ("dp_size", "tp_size", "cp_size", "pp_size", world_field)
    what = f"{world} ranks are listed" if world_field == "ranks" else f"world_size is {world}"
    if world % non_dp == 0:
        hint = f"Set dp_size={world // non_dp} or leave dp_size unset to infer it."
    else:
        hint = f"Run on {product} ranks, or choose sizes whose product is {world}."
    code = Code.INVALID_RANKS if world_field == "ranks" else Code.WORLD_SIZE_MISMATCH
    return Problem.error(code, fields, f"{formula}, but {what}.", hint)


def _not_divisible(tp: int, pp: int, cp: int, world: int, world_field: str) -> Problem:
    non_dp = tp * cp * pp
    fixes = [f"a world size that is a multiple of {non_dp} ({join_or(nearest_multiples(world, non_dp))})"]
    tp_options = [d for d in divisors(world) if (world // d) % (cp * pp) == 0]
    if tp > 1 and tp_options:
        fixes.append(f"tp_size {join_or(nearest(tp_options, tp))}")
    return Problem.error(
        Code.WORLD_SIZE_NOT_DIVISIBLE,
        (world_field, "tp_size", "cp_size", "pp_size"),
        f"world_size {world} is not divisible by tp·cp·pp = {tp}·{cp}·{pp} = {non_dp}, so dp cannot be inferred.",
        "Use " + ", or ".join(fixes) + ".",
    )
