"""The planner's entry points: ``validate_topology`` never raises, ``plan_mesh`` raises ``TopologyError``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..config import ParallelismSizes, Strategy, StrategyConfig, resolve_strategy
from .arith import is_size
from .cluster import cluster_warnings
from .cp_degrees import cp_degree_problems
from .mesh_plan import MeshPlan
from .model import model_problems
from .problems import Code, Problem, Severity, TopologyError
from .rules import check_sizes
from .shapes import ClusterShape, ModelShape
from .suggest import Suggestion, suggest_sizes

StrategyLike = StrategyConfig | Strategy | str


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class ValidationReport:
    """Everything the planner has to say about a request; ``plan`` is ``None`` when it is invalid."""

    valid: bool
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    plan: MeshPlan | None = None
    world_sizes: tuple[WorldSizeVerdict, ...] | None = field(default=None)

    def to_dict(self, *, groups: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "valid": self.valid,
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [p.to_dict() for p in self.warnings],
            "suggestions": [s.to_dict() for s in self.suggestions],
            "plan": self.plan.to_dict(groups=groups) if self.plan is not None else None,
        }
        if self.world_sizes is not None:
            out["world_sizes"] = [w.to_dict() for w in self.world_sizes]
        return out

    def raise_for_problems(self) -> MeshPlan:
        if self.plan is None:
            raise TopologyError(self.problems)
        return self.plan


def parse_nnodes(nnodes: object) -> tuple[int, int] | None:
    """``4`` → (4, 4); ``"2:8"`` → (2, 8); ``None`` for anything malformed."""
    if isinstance(nnodes, bool):
        return None
    if isinstance(nnodes, int):
        return (nnodes, nnodes) if nnodes >= 1 else None
    if isinstance(nnodes, str):
        low, sep, high = nnodes.strip().partition(":")
        try:
            lo, hi = int(low), int(high) if sep else int(low)
        except ValueError:
            return None
        return (lo, hi) if 1 <= lo <= hi else None
    if isinstance(nnodes, Sequence) and len(nnodes) == 2 and all(is_size(v) for v in nnodes):
        lo, hi = int(nnodes[0]), int(nnodes[1])
        return (lo, hi) if lo <= hi else None
    return None


def _input_problem(field_name: str, message: str, hint: str) -> Problem:
    return Problem.error(Code.INVALID_SIZE, (field_name,), message, hint)


def validate_topology(
    strategy: StrategyLike,
    sizes: ParallelismSizes | None = None,
    *,
    world_size: int | None = None,
    nnodes: int | str | tuple[int, int] | None = None,
    nproc_per_node: int | None = None,
    ranks: Sequence[int] | None = None,
    cluster: ClusterShape | None = None,
    model: ModelShape | None = None,
    suggest: bool = True,
    cp_ring_degree: int = 1,
    cp_ulysses_degree: int | None = None,
) -> ValidationReport:
    """Check a topology request and lay it out; reports every problem at once and never raises.

    The world is ``world_size`` ranks, or ``nnodes × nproc_per_node`` (``nnodes`` may be a range
    ``"MIN:MAX"`` for elastic jobs, which checks every node count in it), or the ``ranks`` subset.
    Without a cluster shape, ``nproc_per_node`` is taken as the GPUs per node. ``cp_ring_degree`` ×
    ``cp_ulysses_degree`` must split cp (NeMo 0.7.0's context-parallel decomposition).
    """
    cp_split = (cp_ring_degree, cp_ulysses_degree)
    sizes = sizes if sizes is not None else ParallelismSizes()
    problems: list[Problem] = []
    resolved_strategy = resolve_strategy(strategy)
    if resolved_strategy is None:
        problems.append(
            Problem.error(
                Code.UNKNOWN_STRATEGY,
                ("strategy",),
                f"Unknown strategy {strategy!r}.",
                "Use one of fsdp2, megatron_fsdp (aliases megatron-fsdp, mfsdp) or ddp.",
            )
        )

    node_range: tuple[int, int] | None = None
    if nnodes is not None or nproc_per_node is not None:
        node_range = parse_nnodes(nnodes) if nnodes is not None else None
        if nnodes is None:
            problems.append(_input_problem("nnodes", "nproc_per_node was given without nnodes.", "Also set nnodes."))
        elif node_range is None:
            problems.append(
                _input_problem(
                    "nnodes",
                    f"nnodes must be a positive integer or a range MIN:MAX with 1 ≤ MIN ≤ MAX, got {nnodes!r}.",
                    'Use e.g. nnodes=8, or "2:8" for an elastic job.',
                )
            )
        if not is_size(nproc_per_node):
            problems.append(
                _input_problem(
                    "nproc_per_node",
                    f"nproc_per_node must be an integer ≥ 1, got {nproc_per_node!r}.",
                    "Set nproc_per_node to the processes (GPUs) per node, e.g. 8.",
                )
            )
            node_range = None

    if cluster is not None:
        for name in ("gpus_per_node", "nvlink_domain"):
            value = getattr(cluster, name)
            if (value is not None or name == "gpus_per_node") and not is_size(value):
                problems.append(
                    _input_problem(
                        f"cluster.{name}",
                        f"cluster.{name} must be an integer ≥ 1, got {value!r}.",
                        f"Set cluster.{name} to a positive integer, e.g. 8."
                        if name == "gpus_per_node"
                        else "Set cluster.nvlink_domain to the GPUs in one NVLink domain (e.g. 72), or omit it.",
                    )
                )
                cluster = None
                break
    if cluster is None and node_range is not None and is_size(nproc_per_node):
        cluster = ClusterShape(gpus_per_node=nproc_per_node)  # type: ignore[arg-type]

    if node_range is not None and is_size(nproc_per_node) and resolved_strategy is not None:
        lo, hi = node_range
        if world_size is not None and (lo != hi or world_size != lo * nproc_per_node):  # type: ignore[operator]
            problems.append(
                Problem.error(
                    Code.WORLD_SIZE_MISMATCH,
                    ("world_size", "nnodes", "nproc_per_node"),
                    f"world_size {world_size} disagrees with nnodes {nnodes} × nproc_per_node {nproc_per_node}.",
                    "Give either world_size or nnodes and nproc_per_node.",
                )
            )
        elif lo != hi:
            return _validate_range(
                resolved_strategy,
                sizes,
                lo,
                hi,
                nproc_per_node,  # type: ignore[arg-type]
                ranks,
                cluster,
                model,
                problems,
                suggest,
                cp_split,
            )
        else:
            world_size = lo * nproc_per_node  # type: ignore[operator]

    if resolved_strategy is None:
        return ValidationReport(False, tuple(problems))
    return _validate_one(resolved_strategy, sizes, world_size, ranks, cluster, model, problems, suggest, cp_split)


def _validate_one(
    strategy: Strategy,
    sizes: ParallelismSizes,
    world_size: int | None,
    ranks: Sequence[int] | None,
    cluster: ClusterShape | None,
    model: ModelShape | None,
    problems: list[Problem],
    suggest: bool,
    cp_split: tuple[object, object] = (1, None),
) -> ValidationReport:
    resolved, size_problems = check_sizes(strategy, sizes, world_size, ranks)
    problems = problems + size_problems
    known_cp = resolved.cp if resolved else sizes.cp_size if is_size(sizes.cp_size) else None
    cp_degrees, cp_problems = cp_degree_problems(known_cp, *cp_split)
    problems += cp_problems
    if model is not None:
        known = {
            f: getattr(sizes, f) if is_size(getattr(sizes, f)) else None
            for f in ("tp_size", "pp_size", "cp_size", "ep_size")
        }
        problems += model_problems(
            model,
            tp=resolved.tp if resolved else known["tp_size"],
            pp=resolved.pp if resolved else known["pp_size"],
            cp=resolved.cp if resolved else known["cp_size"],
            ep=resolved.ep if resolved else known["ep_size"],
            dp=resolved.dp if resolved else None,
        )
    errors = tuple(p for p in problems if p.severity is Severity.ERROR)
    warnings = [p for p in problems if p.severity is Severity.WARNING]
    if errors or resolved is None:
        suggestions: list[Suggestion] = []
        world = len(ranks) if ranks is not None and not isinstance(ranks, str) else world_size
        sizes_ok = all(p.code is not Code.INVALID_SIZE for p in errors)
        if suggest and sizes_ok and is_size(world):
            suggestions = suggest_sizes(strategy, sizes, world, model=model)  # type: ignore[arg-type]
        return ValidationReport(False, errors, tuple(warnings), tuple(suggestions))
    plan = MeshPlan.build(
        strategy,
        resolved,
        len(ranks) if ranks is not None else world_size,  # type: ignore[arg-type]
        tuple(ranks) if ranks is not None else None,
        cluster,
        cp_degrees if resolved.cp > 1 else None,
    )
    warnings += cluster_warnings(plan)
    return ValidationReport(True, (), tuple(warnings), (), plan)


def _validate_range(
    strategy: Strategy,
    sizes: ParallelismSizes,
    lo: int,
    hi: int,
    nproc_per_node: int,
    ranks: Sequence[int] | None,
    cluster: ClusterShape | None,
    model: ModelShape | None,
    problems: list[Problem],
    suggest: bool,
    cp_split: tuple[object, object] = (1, None),
) -> ValidationReport:
    """Every node count in ``lo..hi``; the plan shown is the one at the largest valid world size."""
    verdicts: list[WorldSizeVerdict] = []
    for nodes in range(lo, hi + 1):
        world = nodes * nproc_per_node
        resolved, found = check_sizes(strategy, sizes, world, ranks)
        if model is not None and resolved is not None:
            found += model_problems(
                model, tp=resolved.tp, pp=resolved.pp, cp=resolved.cp, ep=resolved.ep, dp=resolved.dp
            )
        errors = tuple(p for p in found if p.severity is Severity.ERROR)
        verdicts.append(WorldSizeVerdict(world, nodes, not errors and resolved is not None, errors))
    good = [v for v in verdicts if v.valid]
    bad = [v for v in verdicts if not v.valid]
    best = _validate_one(
        strategy, sizes, (good or verdicts)[-1].world_size, ranks, cluster, model, [], suggest, cp_split
    )
    if bad:
        valid_counts = [v.nnodes for v in good]
        hint = (
            f"Restrict nnodes to the valid node counts ({', '.join(map(str, valid_counts))}), or choose sizes "
            "that divide every world size in the range (e.g. leave dp_size unset)."
            if valid_counts
            else "No node count in the range is valid; choose sizes that divide nnodes × nproc_per_node."
        )
        problems.append(
            Problem.error(
                Code.ELASTIC_RANGE_INVALID,
                ("nnodes", "nproc_per_node"),
                f"{len(bad)} of {len(verdicts)} node counts in {lo}:{hi} give an invalid topology: world sizes "
                f"{', '.join(str(v.world_size) for v in bad[:8])}{' …' if len(bad) > 8 else ''}.",
                hint,
            )
        )
        if not good:
            problems.extend(best.problems)
    return ValidationReport(
        valid=not problems,
        problems=tuple(problems),
        warnings=best.warnings,
        suggestions=best.suggestions if not good else (),
        plan=best.plan,
        world_sizes=tuple(verdicts),
    )


def plan_mesh(
    strategy: StrategyLike,
    sizes: ParallelismSizes | None = None,
    *,
    world_size: int | None = None,
    ranks: Sequence[int] | None = None,
    cluster: ClusterShape | None = None,
    model: ModelShape | None = None,
    cp_ring_degree: int = 1,
    cp_ulysses_degree: int | None = None,
) -> MeshPlan:
    """The layout of a valid topology; raises ``TopologyError`` carrying every problem otherwise."""
    report = validate_topology(
        strategy,
        sizes,
        world_size=world_size,
        ranks=ranks,
        cluster=cluster,
        model=model,
        suggest=False,
        cp_ring_degree=cp_ring_degree,
        cp_ulysses_degree=cp_ulysses_degree,
    )
    return report.raise_for_problems()
