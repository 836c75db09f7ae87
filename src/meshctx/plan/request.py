"""``TopologyRequest``: one validate/layout request, the same whether it came from Python, the CLI or HTTP,
and the planner's steps, each of which takes the request (then the resolved sizes or the plan).

The steps: read the world (``world_size``, ``nnodes × nproc_per_node`` or ``ranks``) and the optional cluster
shape; check the sizes against the world (``rules``) and the model (``model``); lay out the plan
(``mesh_plan``) and warn where groups leave a node (``cluster``); or suggest valid sizes (``suggest``).
An elastic node range runs the sizes check once a node count. Every problem is reported; nothing raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .arith import is_integer, is_size
from .cluster import ClusterShape, cluster_warnings
from .cp_degrees import cp_degree_problems
from .hints import advised
from .mesh_plan import MeshPlan
from .model import ModelShape, model_problems
from .problems import Code, Problem, Severity
from .report import ValidationReport, WorldSizeVerdict
from .rules import check_sizes
from .sizes import DEGREE_FIELDS, ParallelismSizes, ResolvedSizes
from .strategies import Strategy, StrategyLike, choices, resolve_strategy
from .suggest import Suggestion, suggest_sizes


@dataclass(frozen=True, kw_only=True, slots=True)
class TopologyRequest:
    """The world is ``world_size`` ranks, or ``nnodes × nproc_per_node`` (``nnodes`` may be a range ``"MIN:MAX"``
    for elastic jobs), or the ``ranks`` subset. Without a cluster shape, ``nproc_per_node`` is taken as the GPUs
    per node. Fields hold what the caller sent, unchecked: ``validate`` reports what is wrong with them."""

    strategy: StrategyLike = "fsdp2"
    sizes: ParallelismSizes = field(default_factory=ParallelismSizes)
    world_size: int | None = None
    nnodes: int | str | tuple[int, int] | None = None
    nproc_per_node: int | None = None
    ranks: Sequence[int] | None = None
    cluster: ClusterShape | None = None
    model: ModelShape | None = None
    #: NeMo 0.7.0's split of cp into ring attention × Ulysses (``None``: cp / ring); checked, then carried by the plan.
    cp_ring_degree: int = 1
    cp_ulysses_degree: int | None = None

    def validate(self, *, suggest: bool = True) -> ValidationReport:
        """Check the request and lay it out; reports every problem at once and never raises."""
        strategy, problems = _read_strategy(self)
        request, node_range = _read_world(self, problems)
        if strategy is not None and node_range is not None and node_range[0] != node_range[1]:
            return _check_range(request, strategy, node_range, problems, suggest)
        if strategy is None:
            return ValidationReport(False, tuple(problems))
        return _check_one(request, strategy, problems, suggest)

    def to_dict(self) -> dict[str, object]:
        """The wire form (the body of ``POST /v1/validate``); unset optional parts are left out."""
        out: dict[str, object] = {"strategy": self.strategy, "sizes": self.sizes.to_dict()}
        if self.world_size is not None:
            out["world_size"] = self.world_size
        if self.nnodes is not None:  # a (MIN, MAX) pair travels as the range string "MIN:MAX"
            nnodes = self.nnodes
            out["nnodes"] = (
                f"{nnodes[0]}:{nnodes[1]}" if isinstance(nnodes, (tuple, list)) and len(nnodes) == 2 else nnodes
            )
        if self.nproc_per_node is not None:
            out["nproc_per_node"] = self.nproc_per_node
        if self.ranks is not None:
            out["ranks"] = list(self.ranks)
        if self.cluster is not None:
            out["cluster"] = self.cluster.to_dict()
        if self.model is not None:
            out["model"] = {k: v for k, v in self.model.to_dict().items() if v is not None}
        if (self.cp_ring_degree, self.cp_ulysses_degree) != (1, None):
            out["cp_ring_degree"] = self.cp_ring_degree
            out["cp_ulysses_degree"] = self.cp_ulysses_degree
        return out


def parse_nnodes(nnodes: object) -> tuple[int, int] | None:
    """``4`` → (4, 4); ``"2:8"`` → (2, 8); ``None`` for anything malformed."""
    if is_integer(nnodes):
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


# -- step 1: the strategy and the world ----------------------------------------------------------------------


def _read_strategy(request: TopologyRequest) -> tuple[Strategy | None, list[Problem]]:
    strategy = resolve_strategy(request.strategy)
    if strategy is not None:
        return strategy, []
    unknown = Problem.error(
        Code.UNKNOWN_STRATEGY,
        ("strategy",),
        f"Unknown strategy {request.strategy!r}.",
        f"Use one of {choices()}.",
    )
    return None, [unknown]


def _read_world(request: TopologyRequest, problems: list[Problem]) -> tuple[TopologyRequest, tuple[int, int] | None]:
    """The request with its world settled (``world_size`` from a fixed node count, the cluster shape from
    ``nproc_per_node``, a malformed cluster dropped) and the node range; problems go to ``problems``."""
    nnodes, nproc = request.nnodes, request.nproc_per_node
    node_range: tuple[int, int] | None = None
    if nnodes is not None or nproc is not None:
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
        if not is_size(nproc):
            problems.append(
                _input_problem(
                    "nproc_per_node",
                    f"nproc_per_node must be an integer ≥ 1, got {nproc!r}.",
                    "Set nproc_per_node to the processes (GPUs) per node, e.g. 8.",
                )
            )
            node_range = None

    cluster = _checked_cluster(request.cluster, problems)
    if cluster is None and node_range is not None and is_size(nproc):
        cluster = ClusterShape(gpus_per_node=nproc)
    elif cluster is not None and node_range is not None and is_size(nproc):
        cluster = _processes_on(cluster, nproc, problems)
    if cluster is not request.cluster:
        request = replace(request, cluster=cluster)

    if node_range is None or not is_size(nproc) or resolve_strategy(request.strategy) is None:
        return request, node_range
    lo, hi = node_range
    world_size = request.world_size
    if world_size is not None and (lo != hi or world_size != lo * nproc):
        problems.append(
            Problem.error(
                Code.WORLD_SIZE_MISMATCH,
                ("world_size", "nnodes", "nproc_per_node"),
                f"world_size {world_size} disagrees with nnodes {nnodes} × nproc_per_node {nproc}.",
                "Give either world_size or nnodes and nproc_per_node.",
            )
        )
        return request, None
    if lo == hi:
        request = replace(request, world_size=lo * nproc)
    return request, node_range


def _processes_on(cluster: ClusterShape, nproc: int, problems: list[Problem]) -> ClusterShape:
    """The cluster with ``nproc`` processes on each node: more processes than GPUs is an error (one process
    drives one GPU); fewer places rank ``r`` on node ``r // nproc``, so the node count given is the one used."""
    if nproc > cluster.gpus_per_node:
        problems.append(
            Problem.error(
                Code.NPROC_EXCEEDS_GPUS_PER_NODE,
                ("nproc_per_node", "cluster.gpus_per_node"),
                f"nproc_per_node {nproc} is more than the {cluster.gpus_per_node} GPUs per node; each process "
                "drives one GPU.",
                f"Use nproc_per_node {cluster.gpus_per_node} on {nproc // cluster.gpus_per_node}× the nodes (the "
                "same world size), or fix gpus_per_node."
                if nproc % cluster.gpus_per_node == 0
                else f"Use nproc_per_node ≤ {cluster.gpus_per_node} and more nodes, or fix gpus_per_node.",
            )
        )
        return cluster
    return cluster if nproc == cluster.gpus_per_node else replace(cluster, nproc_per_node=nproc)


def _checked_cluster(cluster: ClusterShape | None, problems: list[Problem]) -> ClusterShape | None:
    """The cluster shape if its numbers are usable, else ``None`` (and the problem)."""
    if cluster is None:
        return None
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
            return None
    return cluster


# -- step 2: the sizes, the model, then the plan or suggestions ----------------------------------------------


def _model_check(request: TopologyRequest, resolved: ResolvedSizes | None) -> list[Problem]:
    """The model against the resolved sizes, or, when they could not be resolved, the degrees that were valid."""
    if request.model is None:
        return []
    if resolved is not None:
        return model_problems(
            request.model, tp=resolved.tp, pp=resolved.pp, cp=resolved.cp, ep=resolved.ep, dp=resolved.dp
        )
    known = {f: v if is_size(v := getattr(request.sizes, f)) else None for f in DEGREE_FIELDS}
    return model_problems(
        request.model, tp=known["tp_size"], pp=known["pp_size"], cp=known["cp_size"], ep=known["ep_size"], dp=None
    )


def _check_one(
    request: TopologyRequest, strategy: Strategy, problems: list[Problem], suggest: bool, *, report: bool = True
) -> ValidationReport:
    """One world size. ``report=False`` (a suggestion's check) warns from the tp and ep spans alone, without
    counting every axis's spans for the plan's cluster report."""
    ranks = request.ranks
    resolved, size_problems = check_sizes(strategy, request.sizes, request.world_size, ranks)
    known_cp = resolved.cp if resolved else request.sizes.cp_size if is_size(request.sizes.cp_size) else None
    cp_degrees, cp_problems = cp_degree_problems(known_cp, request.cp_ring_degree, request.cp_ulysses_degree)
    world_problems = [p for p in problems if p.severity is Severity.ERROR]
    problems = problems + size_problems + cp_problems + _model_check(request, resolved)
    errors = tuple(p for p in problems if p.severity is Severity.ERROR)
    warnings = [p for p in problems if p.severity is Severity.WARNING]
    if errors or resolved is None:
        suggestions: list[Suggestion] = []
        world = len(ranks) if ranks is not None and not isinstance(ranks, str) else request.world_size
        sizes_ok = all(p.code is not Code.INVALID_SIZE for p in errors)
        # Problems of the world itself (nodes × processes, GPUs per node) are not fixed by other sizes.
        if suggest and sizes_ok and not world_problems and is_size(world):
            cluster = request.cluster
            suggestions = suggest_sizes(
                strategy,
                request.sizes,
                world,
                model=request.model,
                accept=lambda s: _fit(request, strategy, s),
                local=(cluster.ranks_per_nvlink_domain or cluster.ranks_per_node) if cluster is not None else None,
            )
            errors = tuple(advised(p, request.sizes, world, request.model, suggestions) for p in errors)
        return ValidationReport(False, errors, tuple(warnings), tuple(suggestions))
    world = len(ranks) if ranks is not None else request.world_size
    assert world is not None  # check_sizes resolved the sizes against it
    plan = MeshPlan.build(
        strategy,
        resolved,
        world,
        tuple(ranks) if ranks is not None else None,
        request.cluster,
        cp_degrees if resolved.cp > 1 else None,
    )
    warnings += cluster_warnings(plan, plan._cluster_report() if plan.cluster is not None and report else None)
    return ValidationReport(True, (), tuple(warnings), (), plan)


def _fit(request: TopologyRequest, strategy: Strategy, sizes: ParallelismSizes) -> int | None:
    """``None`` unless ``sizes`` in place of the request's sizes give a valid topology (a suggestion must fix every
    problem); else the warnings that topology still gets (0: its groups fit the hardware)."""
    checked = _check_one(replace(request, sizes=sizes), strategy, [], suggest=False, report=False)
    return len(checked.warnings) if checked.valid else None


def _check_range(
    request: TopologyRequest,
    strategy: Strategy,
    node_range: tuple[int, int],
    problems: list[Problem],
    suggest: bool,
) -> ValidationReport:
    """Every node count of the range; the plan shown is the one at the largest valid world size."""
    lo, hi = node_range
    nproc = request.nproc_per_node
    assert nproc is not None
    verdicts: list[WorldSizeVerdict] = []
    for nodes in range(lo, hi + 1):
        world = nodes * nproc
        resolved, found = check_sizes(strategy, request.sizes, world, request.ranks)
        if resolved is not None:
            found += _model_check(request, resolved)
        errors = tuple(p for p in found if p.severity is Severity.ERROR)
        verdicts.append(WorldSizeVerdict(world, nodes, not errors and resolved is not None, errors))
    good = [v for v in verdicts if v.valid]
    bad = [v for v in verdicts if not v.valid]
    best = _check_one(replace(request, world_size=(good or verdicts)[-1].world_size), strategy, [], suggest)
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
