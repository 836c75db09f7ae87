"""torchrun: command-line flags and the equivalent ``PET_*`` environment (torchrun reads every
flag ``--some-flag`` from ``PET_SOME_FLAG`` when the flag is absent)."""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath

from ..plan import MeshPlan
from .spec import LaunchError, LaunchSpec, Rendering, check_launch, job_env


def torchrun_settings(launch: LaunchSpec, *, nnodes: str | None = None, endpoint: str | None = None) -> dict[str, str]:
    """torchrun option → value; ``nnodes``/``endpoint`` override the spec (launchers that know them
    only at run time pass shell expressions)."""
    low, high = launch.node_range
    settings = {"nnodes": nnodes or (str(low) if low == high else f"{low}:{high}")}
    settings["nproc-per-node"] = str(launch.nproc_per_node)
    endpoint = endpoint or launch.rdzv_endpoint
    if endpoint is None and high > 1:
        raise LaunchError([("rdzv_endpoint", "a multi-node or elastic job needs a rendezvous endpoint HOST:PORT")])
    if endpoint is None and launch.master_port is not None:  # one node on a port of the user's choosing
        endpoint = f"127.0.0.1:{launch.master_port}"
    if endpoint is None:
        settings["standalone"] = "1"
    else:
        settings["rdzv-backend"] = launch.rdzv_backend
        settings["rdzv-endpoint"] = endpoint
        settings["rdzv-id"] = launch.rdzv_id or launch.job_name
    return settings


def pet_env(settings: dict[str, str]) -> dict[str, str]:
    return {"PET_" + name.upper().replace("-", "_"): value for name, value in settings.items()}


#: ``python``, ``python3``, ``python3.12``, ``/usr/bin/python3``: an interpreter, not a script.
_INTERPRETER = re.compile(r"python[0-9.]*")


def torchrun_command(command: tuple[str, ...]) -> tuple[str, ...]:
    """What follows torchrun's own flags for the training ``command``. torchrun runs its first argument with its own
    Python (``python SCRIPT ARGS``), so a command that names the interpreter itself (``python train.py``) gets
    ``--no-python`` and runs as written; a script (``train.py ARGS``) is passed on unchanged."""
    if command and _INTERPRETER.fullmatch(PurePosixPath(command[0]).name):
        return ("--no-python", *command)
    return command


def torchrun_argv(settings: dict[str, str], command: tuple[str, ...]) -> list[str]:
    """``torchrun FLAGS [--no-python] COMMAND`` (``command`` as ``torchrun_command`` takes it)."""
    flags = [f"--{name}" if name == "standalone" else f"--{name}={value}" for name, value in settings.items()]
    return ["torchrun", *flags, *torchrun_command(command)]


def render_torchrun(plan: MeshPlan, launch: LaunchSpec) -> Rendering:
    check_launch(plan, launch)
    settings = torchrun_settings(launch)
    env = job_env(plan, launch)
    argv = torchrun_argv(settings, launch.command)
    lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    lines.append(" \\\n    ".join(shlex.quote(a) for a in argv))
    return Rendering(
        "torchrun",
        {"argv": argv, "env": env, "pet_env": pet_env(settings)},
        "\n".join(lines) + "\n",
        env,
        ("Run on every node; instead of the flags, the PET_* variables in pet_env configure torchrun.",),
    )
