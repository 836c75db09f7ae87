"""Kueue topology-aware scheduling: pod-template annotations that keep every model-parallel group
(or every pipeline stage) inside one topology domain.

Kueue cuts a PodSet into slices of ``podset-slice-size`` consecutive pods and places each slice in
one domain of the ``podset-slice-required-topology`` level. Pod ``i`` runs node rank ``i`` (as
Kubeflow Trainer and JobSet number them), so rank ``r`` is on pod ``r // nproc_per_node``, and a
block of ``B`` consecutive ranks needs slices of ``lcm(B, nproc_per_node) / nproc_per_node`` pods.
"""

from __future__ import annotations

from math import lcm

from ..plan import MeshPlan
from .spec import LaunchError, LaunchSpec, Rendering, check_launch, group_block
from .text import yaml_text

KUEUE = "kueue.x-k8s.io/"
SLICE_REQUIRED = KUEUE + "podset-slice-required-topology"
SLICE_SIZE = KUEUE + "podset-slice-size"
PODSET_REQUIRED = KUEUE + "podset-required-topology"
PODSET_PREFERRED = KUEUE + "podset-preferred-topology"


def slice_pods(plan: MeshPlan, launch: LaunchSpec) -> int:
    block = group_block(plan, launch.slice_group)
    return lcm(block, launch.nproc_per_node) // launch.nproc_per_node


def kueue_annotations(plan: MeshPlan, launch: LaunchSpec) -> dict[str, str]:
    """The pod-template annotations of ``launch``'s ``slice_topology`` and ``podset_topology`` (each only when
    given); ``LaunchError`` when the node count cannot be cut into whole slices."""
    annotations: dict[str, str] = {}
    if launch.podset_topology:
        key = PODSET_REQUIRED if launch.podset_topology_mode == "required" else PODSET_PREFERRED
        annotations[key] = launch.podset_topology
    if launch.slice_topology:
        size = slice_pods(plan, launch)
        low, high = launch.node_range
        uneven = [n for n in range(low, high + 1) if n % size]
        if uneven:
            raise LaunchError(
                [("nnodes", f"node counts {uneven[:8]} are not multiples of the slice of {size} pods; restrict nnodes")]
            )
        annotations |= {SLICE_REQUIRED: launch.slice_topology, SLICE_SIZE: str(size)}
    return annotations


def render_kueue(plan: MeshPlan, launch: LaunchSpec) -> Rendering:
    check_launch(plan, launch)
    if not launch.slice_topology:
        raise LaunchError(
            [("slice_topology", "name the node label of the domain each group must stay in, e.g. a rack label")]
        )
    annotations = kueue_annotations(plan, launch)
    size = slice_pods(plan, launch)
    block = group_block(plan, launch.slice_group)
    what = "pipeline stage" if launch.slice_group == "stage" else "tp/cp/ep group"
    doc: dict[str, object] = {"metadata": {"annotations": annotations}}
    return Rendering(
        "kueue",
        doc,
        yaml_text(doc),
        {},
        (
            f"Each {what} spans {block} consecutive ranks = {size} pod{'' if size == 1 else 's'} of "
            f"{launch.nproc_per_node} processes; "
            f"each slice of {size} pods stays inside one {launch.slice_topology} domain.",
            "Put these annotations on the pod template (JobSet replicatedJob, Job, or the TrainingRuntime's node job).",
        ),
    )
