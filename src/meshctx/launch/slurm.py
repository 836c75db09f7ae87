"""Slurm: an sbatch script with one torchrun task per node. The ``--comment`` carries the sizes in
the form ``deploy/slurm/job_submit.lua`` checks inside slurmctld."""

from __future__ import annotations

import shlex

from ..plan import MeshPlan
from .spec import LaunchSpec, Rendering, check_launch, job_env
from .torchrun import torchrun_argv, torchrun_command, torchrun_settings


def slurm_comment(plan: MeshPlan, launch: LaunchSpec) -> str:
    """``meshctx:strategy=fsdp2,tp=8,...,nproc=8`` (dp only for a fixed node count)."""
    fields: dict[str, object] = {"strategy": plan.strategy.value}
    fields |= {field.axis: value for field, value in plan.sizes.launch_values(elastic=launch.elastic)}
    fields["nproc"] = launch.nproc_per_node
    return "meshctx:" + ",".join(f"{k}={v}" for k, v in fields.items())


def render_slurm(plan: MeshPlan, launch: LaunchSpec) -> Rendering:
    check_launch(plan, launch)
    low, high = launch.node_range
    gpus = f"{launch.accelerator}:{launch.nproc_per_node}" if launch.accelerator else str(launch.nproc_per_node)
    directives = {
        "job-name": launch.job_name,
        "nodes": str(low) if low == high else f"{low}-{high}",
        "ntasks-per-node": "1",
        "gpus-per-node": gpus,
        "comment": slurm_comment(plan, launch),
    }
    env = job_env(plan, launch)
    settings = torchrun_settings(launch, nnodes='"$SLURM_JOB_NUM_NODES"', endpoint=f'"$head_node:{launch.port}"')
    settings["rdzv-id"] = shlex.quote(launch.rdzv_id) if launch.rdzv_id else '"$SLURM_JOB_ID"'
    script = ["#!/bin/bash", *(f"#SBATCH --{k}={v}" for k, v in directives.items()), "set -euo pipefail"]
    script += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    script.append('head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)')
    argv = [*torchrun_argv(settings, ()), *(shlex.quote(c) for c in torchrun_command(launch.command))]
    script.append("srun " + " ".join(argv))
    return Rendering(
        "slurm",
        {"directives": directives, "script": script},
        "\n".join(script) + "\n",
        env,
        ("Submit with sbatch; torchrun gets the allocated node count from SLURM_JOB_NUM_NODES.",),
    )
