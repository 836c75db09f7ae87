"""SkyPilot task YAML: ``num_nodes``, ``resources.accelerators`` and the ``MESHCTX_*`` envs (which the
meshctx SkyPilot admin policy reads back to check the task)."""

from __future__ import annotations

import shlex

from ..plan import MeshPlan
from .spec import LaunchError, LaunchSpec, Rendering, check_launch, job_env
from .text import yaml_text
from .torchrun import torchrun_command


def render_skypilot(plan: MeshPlan, launch: LaunchSpec) -> Rendering:
    check_launch(plan, launch)
    errors = []
    if launch.elastic:
        errors.append(("nnodes", "SkyPilot's num_nodes is one number; give a fixed node count"))
    if not launch.accelerator:
        errors.append(("accelerator", "name the GPU type for resources.accelerators, e.g. H100"))
    if errors:
        raise LaunchError(errors)
    env = job_env(plan, launch)
    run = (
        'head_node=$(echo "$SKYPILOT_NODE_IPS" | head -n 1)\n'
        'torchrun --nnodes="$SKYPILOT_NUM_NODES" --nproc-per-node="$SKYPILOT_NUM_GPUS_PER_NODE" '
        f'--node-rank="$SKYPILOT_NODE_RANK" --master-addr="$head_node" --master-port={launch.port} '
        + " ".join(shlex.quote(c) for c in torchrun_command(launch.command))
        + "\n"
    )
    doc: dict[str, object] = {
        "name": launch.job_name,
        "num_nodes": launch.node_range[0],
        "resources": {"accelerators": f"{launch.accelerator}:{launch.nproc_per_node}"},
        "envs": env,
        "run": run,
    }
    return Rendering("skypilot", doc, yaml_text(doc), env, ("Launch with sky launch TASK.yaml.",))
