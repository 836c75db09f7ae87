"""The SkyPilot admin policy's one implementation: read a task's ``MESHCTX_*`` envs, nodes and GPUs, check
the topology, and say which envs to add. Both the in-process ``sky.AdminPolicy``
(``meshctx.integrations.skypilot_admin``) and the service's ``POST /v1/policy/skypilot`` call
``check_task``; this module imports neither ``sky`` nor YAML, so it takes the task as its YAML mapping
(``sky.Task.to_yaml_config()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import TaskRejected
from ..launch.spec import ENV_FINGERPRINT, ENV_STRATEGY, ENV_WORLD_SIZE, SIZE_ENV
from ..plan.model import MODEL_FIELDS
from ..plan.request import TopologyRequest
from .job_sizes import FieldProblem, parse_count, read_job_sizes, shown
from .limits import Check, Limits

PREFIX = "MESHCTX_"
#: Model-shape envs, e.g. ``MESHCTX_NUM_ATTENTION_HEADS``.
MODEL_ENV = {f: PREFIX + f.upper() for f in MODEL_FIELDS}
#: Processes per node when the task names no GPU count (e.g. CPU nodes, or accelerators set elsewhere).
ENV_NPROC_PER_NODE = PREFIX + "NPROC_PER_NODE"
#: Where each request field is read from in a task, for messages.
SOURCES = {"nnodes": "num_nodes", "nproc_per_node": "resources.accelerators", "world_size": "num_nodes"}


@dataclass(frozen=True)
class TaskTopology:
    """What a task asks for; ``request`` is ``None`` when the processes per node cannot be known."""

    request: TopologyRequest | None
    sources: dict[str, str]
    claimed_fingerprint: str | None


def _gpu_counts(accelerators: object, where: str) -> set[int]:
    """``"H100:8"``, ``{"H100": 8}`` or a list of either → the GPU counts named (``"H100"`` alone is 1)."""
    if accelerators is None:
        return set()
    if isinstance(accelerators, str):
        name, sep, count = accelerators.partition(":")
        return {parse_count(count, where) if sep else 1} if name.strip() else set()
    if isinstance(accelerators, Mapping):
        return {1 if v is None else parse_count(v, where) for v in accelerators.values()}
    if isinstance(accelerators, (list, tuple, set)):
        return set().union(*(_gpu_counts(a, where) for a in accelerators))
    raise FieldProblem(where, f"must be GPU:N, {{GPU: N}} or a list of them, got {shown(accelerators)}")


def _gpus_per_node(resources: object, where: str = "resources") -> set[int]:
    if resources is None:
        return set()
    if isinstance(resources, list):
        return set().union(*(_gpus_per_node(r, f"{where}[{i}]") for i, r in enumerate(resources)))
    if not isinstance(resources, Mapping):
        raise FieldProblem(where, f"must be a mapping, got {shown(resources)}")
    counts = _gpu_counts(resources.get("accelerators"), f"{where}.accelerators")
    for key in ("any_of", "ordered"):
        counts |= _gpus_per_node(resources.get(key), f"{where}.{key}")
    return counts


def read_task(task: Mapping[str, object]) -> TaskTopology | None:
    """The topology a task asks for; ``None`` when it has no ``MESHCTX_*`` envs (not meshctx's business).
    Raises ``TaskRejected`` naming every unreadable field."""
    envs = task.get("envs")
    if envs is None or (isinstance(envs, Mapping) and not any(str(k).startswith(PREFIX) for k in envs)):
        return None
    if not isinstance(envs, Mapping):
        raise TaskRejected(f"meshctx: envs must be a mapping of NAME: value, got {shown(envs)}")
    envs = {str(k): v for k, v in envs.items()}
    job = read_job_sizes(envs, ENV_STRATEGY, SIZE_ENV | MODEL_ENV)
    problems = list(job.errors)
    nodes = nproc = None
    try:
        nodes = parse_count(task.get("num_nodes", 1), "num_nodes")
    except FieldProblem as problem:
        problems.append(str(problem))
    sources = {**job.sources, **SOURCES}
    try:
        counts = _gpus_per_node(task.get("resources"))
        if len(counts) > 1:
            problems.append(f"resources.accelerators must name one GPU count per node, got {sorted(counts)}")
        elif counts:
            nproc = counts.pop()
        elif ENV_NPROC_PER_NODE in envs:
            nproc = parse_count(envs[ENV_NPROC_PER_NODE], ENV_NPROC_PER_NODE)
            sources["nproc_per_node"] = ENV_NPROC_PER_NODE
    except FieldProblem as problem:
        problems.append(str(problem))
    claimed = envs.get(ENV_FINGERPRINT)
    if claimed is not None and not isinstance(claimed, str):
        problems.append(f"{ENV_FINGERPRINT} must be a string, got {shown(claimed)}")
    if problems:
        raise TaskRejected("meshctx: " + "; ".join(problems))
    if nodes is None or nproc is None:
        return TaskTopology(None, sources, None)
    request = TopologyRequest(
        strategy=job.strategy, sizes=job.sizes, nnodes=nodes, nproc_per_node=nproc, model=job.model
    )
    return TaskTopology(request, sources, claimed if isinstance(claimed, str) else None)


def check_task(task: Mapping[str, object], check: Check | None = None) -> dict[str, str] | None:
    """The envs to add to a valid task (world size, dp, fingerprint), or ``None`` to leave it as it is
    (no ``MESHCTX_*`` envs, or no way to know its processes per node). ``check`` bounds the request
    before any planning (default: ``Limits()``). Raises ``TaskRejected`` with every reason."""
    topology = read_task(task)
    if topology is None or topology.request is None:
        return None
    request = topology.request
    too_big = (check or Limits().errors)(request)
    if too_big:
        named = (f"{topology.sources.get(name, name)}: {detail}" for name, detail in too_big)
        raise TaskRejected("meshctx: " + "; ".join(named))
    where = f"{request.nnodes} nodes × {request.nproc_per_node} GPUs"
    report = request.validate()
    if not report.valid or report.plan is None:
        details = " | ".join(f"{p.code.value}: {p.message} Fix: {p.hint}" for p in report.problems)
        raise TaskRejected(f"meshctx: {where}: invalid topology: {details}")
    plan = report.plan
    if topology.claimed_fingerprint is not None and topology.claimed_fingerprint != plan.fingerprint():
        raise TaskRejected(
            f"meshctx: {ENV_FINGERPRINT} {shown(topology.claimed_fingerprint)} is not the plan of these sizes on "
            f"{where} ({plan.fingerprint()}); render the task again"
        )
    return {
        ENV_WORLD_SIZE: str(plan.world_size),
        SIZE_ENV["dp_size"]: str(plan.sizes.dp),
        ENV_FINGERPRINT: plan.fingerprint(),
    }
