"""Launcher settings rendered from a valid plan: torchrun, Slurm, Kubeflow TrainJob, Kueue, SkyPilot, and a
Kubernetes Indexed Job or JobSet."""

from __future__ import annotations

from collections.abc import Callable

from ..plan import ClusterShape, MeshPlan, ValidationReport, validate_topology
from ..plan.model import ModelShape
from ..plan.sizes import ParallelismSizes
from ..plan.strategies import StrategyLike
from .indexed_job import render_job, render_jobset
from .kubeflow import render_trainjob
from .kueue import render_kueue
from .skypilot import render_skypilot
from .slurm import render_slurm
from .spec import LaunchError, LaunchSpec, Rendering, job_env
from .torchrun import render_torchrun

RENDERERS: dict[str, Callable[[MeshPlan, LaunchSpec], Rendering]] = {
    "torchrun": render_torchrun,
    "slurm": render_slurm,
    "trainjob": render_trainjob,
    "kueue": render_kueue,
    "skypilot": render_skypilot,
    "job": render_job,
    "jobset": render_jobset,
}
TARGETS: tuple[str, ...] = tuple(RENDERERS)


def render(target: str, plan: MeshPlan, launch: LaunchSpec) -> Rendering:
    """Render ``plan`` for ``target``; raises ``LaunchError`` (also for an unknown target)."""
    renderer = RENDERERS.get(target)
    if renderer is None:
        raise LaunchError([("target", f"unknown target {target!r}; use one of {', '.join(TARGETS)}")])
    return renderer(plan, launch)


def validate_and_render(
    target: str,
    strategy: StrategyLike,
    sizes: ParallelismSizes,
    launch: LaunchSpec,
    *,
    model: ModelShape | None = None,
    cluster: ClusterShape | None = None,
) -> tuple[ValidationReport, Rendering | None]:
    """Validate the topology over the launch's nodes (every count of an elastic range), on ``cluster``'s nodes
    when given (more processes than GPUs per node is refused), and render it when valid; the report says why not
    otherwise. Raises ``LaunchError`` for bad launch settings."""
    report = validate_topology(
        strategy, sizes, nnodes=launch.nnodes, nproc_per_node=launch.nproc_per_node, model=model, cluster=cluster
    )
    if not report.valid or report.plan is None:
        return report, None
    return report, render(target, report.plan, launch)


__all__ = [
    "TARGETS",
    "LaunchError",
    "LaunchSpec",
    "Rendering",
    "job_env",
    "render",
    "validate_and_render",
]
