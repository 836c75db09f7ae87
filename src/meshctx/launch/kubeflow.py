"""Kubeflow Trainer v2 ``TrainJob`` (``trainer.kubeflow.org/v1alpha1``): ``spec.trainer.numNodes``
and ``numProcPerNode``; the runtime (e.g. ``torch-distributed``) sets torchrun's ``PET_*`` itself."""

from __future__ import annotations

import re

from ..plan import MeshPlan
from .annotations import plan_annotations
from .spec import LaunchError, LaunchSpec, Rendering, check_launch, job_env
from .text import yaml_text
from .torchrun import torchrun_command

API_VERSION = "trainer.kubeflow.org/v1alpha1"
#: TrainJob names must be RFC 1035 labels (the CRD enforces it).
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def render_trainjob(plan: MeshPlan, launch: LaunchSpec) -> Rendering:
    check_launch(plan, launch)
    errors = []
    if launch.elastic:
        errors.append(("nnodes", "TrainJob's numNodes is one number; give a fixed node count"))
    if not (DNS_1035.match(launch.job_name) and len(launch.job_name) <= 63):
        errors.append(
            ("job_name", f"a TrainJob name must be an RFC 1035 label (≤ 63 of a-z 0-9 -), got {launch.job_name!r}")
        )
    for name in ("slice_topology", "podset_topology"):
        if getattr(launch, name):
            errors.append(
                (
                    name,
                    "a TrainJob's pods come from its TrainingRuntime: put Kueue's topology annotations on the "
                    "runtime's pod template (meshctx render kueue prints them), or render job or jobset, which "
                    "apply them",
                )
            )
    if errors:
        raise LaunchError(errors)
    env = job_env(plan, launch)
    trainer: dict[str, object] = {
        "numNodes": launch.node_range[0],
        "numProcPerNode": launch.nproc_per_node,
        "command": ["torchrun", *torchrun_command(launch.command)],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "resourcesPerNode": {"limits": {"nvidia.com/gpu": launch.nproc_per_node}},
    }
    if launch.image:
        trainer = {"image": launch.image, **trainer}
    metadata: dict[str, object] = {"name": launch.job_name, "annotations": plan_annotations(plan)}
    if launch.queue:
        metadata["labels"] = {QUEUE_LABEL: launch.queue}
    doc: dict[str, object] = {
        "apiVersion": API_VERSION,
        "kind": "TrainJob",
        "metadata": metadata,
        "spec": {"runtimeRef": {"name": launch.runtime}, "trainer": trainer},
    }
    return Rendering(
        "trainjob",
        doc,
        yaml_text(doc),
        env,
        ("The meshctx.io/* annotations let the admission webhook re-check the job when it is created.",),
    )
