"""What a launcher needs beyond the plan (nodes, processes, rendezvous, names) and what it returns.

Every renderer takes a valid ``MeshPlan`` and a ``LaunchSpec`` and returns a ``Rendering``: typed
data (a dict that is a valid YAML/JSON document for its target) plus the text to paste, and the
environment the job gets so it can attest, from inside, that it built the planned mesh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from math import lcm
from typing import Literal

from ..errors import FieldErrors
from ..plan import MeshPlan, parse_nnodes
from ..plan.arith import is_size
from ..plan.sizes import SIZE_TABLE

#: Environment the job receives; ``MeshContext.from_env`` builds the meshes from it and checks their fingerprint
#: against ``MESHCTX_FINGERPRINT`` (``meshctx.runtime.job_env`` reads it).
ENV_STRATEGY = "MESHCTX_STRATEGY"
ENV_WORLD_SIZE = "MESHCTX_WORLD_SIZE"
ENV_FINGERPRINT = "MESHCTX_FINGERPRINT"
#: The job's id in the registry (its name): ``MeshContext.from_env`` heartbeats it when ``MESHCTX_SERVER`` is set.
ENV_JOB_ID = "MESHCTX_JOB_ID"
#: Size field → environment variable (the same names the SkyPilot policy reads from a task's envs).
SIZE_ENV: dict[str, str] = {f.name: f.env for f in SIZE_TABLE}


class LaunchError(FieldErrors):
    """The launch settings cannot describe this plan; ``errors`` holds every (field, detail) pair."""


class OptionKind(Enum):
    """How a render option is spelled: ``meshctx render`` parses it from its flag, the HTTP body from JSON."""

    TEXT = "text"
    PORT = "port"
    CHOICE = "choice"
    #: The training command: a list of strings over HTTP; one shell-quoted string, or everything after ``--``,
    #: on the command line.
    ARGV = "argv"


@dataclass(frozen=True, slots=True)
class RenderOption:
    """One launch setting of ``meshctx render`` and ``POST /v1/render/{target}``; both are built from
    ``RENDER_OPTIONS``, so a setting cannot exist in one and not the other."""

    name: str
    kind: OptionKind
    help: str
    default: str | tuple[str, ...] | None = None
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        """``--rdzv-id`` for ``rdzv_id``."""
        return "--" + self.name.replace("_", "-")


DEFAULT_COMMAND: tuple[str, ...] = ("train.py",)
#: The rendezvous port on the first node when the renderer picks the endpoint itself (Slurm, SkyPilot).
DEFAULT_MASTER_PORT = 29500

#: Every launch setting a renderer reads, besides ``nnodes`` and ``nproc_per_node`` (topology flags).
RENDER_OPTIONS: tuple[RenderOption, ...] = (
    RenderOption("job_name", OptionKind.TEXT, "job name (sbatch --job-name, TrainJob/SkyPilot name)", "meshctx-job"),
    RenderOption("command", OptionKind.ARGV, "the training script and its arguments", DEFAULT_COMMAND),
    RenderOption("rdzv_endpoint", OptionKind.TEXT, "HOST:PORT of the rendezvous (torchrun, needed on several nodes)"),
    RenderOption("rdzv_backend", OptionKind.TEXT, "torchrun rendezvous backend", "c10d"),
    RenderOption("rdzv_id", OptionKind.TEXT, "torchrun rendezvous id (default: the job name; Slurm: $SLURM_JOB_ID)"),
    RenderOption(
        "master_port",
        OptionKind.PORT,
        f"rendezvous port on the first node (Slurm, SkyPilot, Job, JobSet; default {DEFAULT_MASTER_PORT}); "
        "torchrun on one node without --rdzv-endpoint: this fixed local port instead of --standalone",
    ),
    RenderOption("accelerator", OptionKind.TEXT, "GPU type, e.g. H100 (SkyPilot; Slurm gres type)"),
    RenderOption("image", OptionKind.TEXT, "container image (TrainJob)"),
    RenderOption("runtime", OptionKind.TEXT, "TrainJob runtimeRef name", "torch-distributed"),
    RenderOption("queue", OptionKind.TEXT, "Kueue LocalQueue name (TrainJob label)"),
    RenderOption("slice_topology", OptionKind.TEXT, "Kueue: node label of the domain each group stays in"),
    RenderOption(
        "slice_group",
        OptionKind.CHOICE,
        "Kueue: what stays in one domain, every tp/cp/ep group or every pipeline stage",
        "model",
        ("model", "stage"),
    ),
    RenderOption("podset_topology", OptionKind.TEXT, "Kueue: node label of the domain the whole job stays in"),
    RenderOption(
        "podset_topology_mode",
        OptionKind.CHOICE,
        "Kueue: whether the whole job must (required) or should (preferred) stay in one domain",
        "required",
        ("required", "preferred"),
    ),
)
RENDER_OPTION_NAMES: tuple[str, ...] = tuple(o.name for o in RENDER_OPTIONS)


@dataclass(frozen=True, kw_only=True, slots=True)
class LaunchSpec:
    """How the job is started. ``nnodes`` is ``N`` or an elastic range ``"MIN:MAX"``; every other field is
    a ``RENDER_OPTIONS`` entry with the same name and default."""

    nnodes: int | str
    nproc_per_node: int
    job_name: str = "meshctx-job"
    command: tuple[str, ...] = DEFAULT_COMMAND
    rdzv_endpoint: str | None = None
    rdzv_backend: str = "c10d"
    rdzv_id: str | None = None
    master_port: int | None = None
    accelerator: str | None = None
    image: str | None = None
    runtime: str = "torch-distributed"
    queue: str | None = None
    slice_topology: str | None = None
    slice_group: Literal["model", "stage"] = "model"
    podset_topology: str | None = None
    podset_topology_mode: Literal["required", "preferred"] = "required"

    @classmethod
    def from_options(cls, nnodes: int | str, nproc_per_node: int, options: Mapping[str, object]) -> LaunchSpec:
        """A spec from ``RENDER_OPTIONS`` values (absent or ``None`` ones take the table's default)."""
        values = {o.name: options.get(o.name) for o in RENDER_OPTIONS}
        values = {k: v for k, v in values.items() if v is not None}
        command = values.get("command")
        if isinstance(command, (list, tuple)):
            values["command"] = tuple(command)
        return cls(nnodes=nnodes, nproc_per_node=nproc_per_node, **values)  # type: ignore[arg-type]

    @property
    def port(self) -> int:
        """The rendezvous port on the first node (Slurm, SkyPilot)."""
        return self.master_port if self.master_port is not None else DEFAULT_MASTER_PORT

    @property
    def node_range(self) -> tuple[int, int]:
        parsed = parse_nnodes(self.nnodes)
        assert parsed is not None, "checked by check_launch"
        return parsed

    @property
    def elastic(self) -> bool:
        low, high = self.node_range
        return low != high


@dataclass(frozen=True, slots=True)
class Rendering:
    target: str
    data: dict[str, object]
    text: str
    env: dict[str, str]
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {"target": self.target, "data": self.data, "text": self.text, "env": self.env, "notes": list(self.notes)}


def check_launch(plan: MeshPlan, launch: LaunchSpec) -> None:
    """Raise ``LaunchError`` with every reason the launch cannot run this plan."""
    errors: list[tuple[str, str]] = []
    node_range = parse_nnodes(launch.nnodes)
    nproc = launch.nproc_per_node
    nproc_ok = is_size(nproc)
    if node_range is None:
        errors.append(("nnodes", f"expected N or MIN:MAX with 1 ≤ MIN ≤ MAX, got {launch.nnodes!r}"))
    if not nproc_ok:
        errors.append(("nproc_per_node", f"expected an integer ≥ 1, got {nproc!r}"))
    if plan.ranks is not None:
        errors.append(("plan.ranks", "a plan over a rank subset is part of a larger job; render the whole world"))
    if node_range is not None and nproc_ok:
        low, high = node_range
        if low == high and low * nproc != plan.world_size:
            errors.append(
                (
                    "nnodes",
                    f"nnodes {low} × nproc_per_node {nproc} = {low * nproc} ranks, but the plan has "
                    f"{plan.world_size}; use nnodes {plan.world_size // nproc}"
                    if plan.world_size % nproc == 0
                    else f"the plan's {plan.world_size} ranks are not a multiple of nproc_per_node {nproc}",
                )
            )
        elif low != high and not (plan.world_size % nproc == 0 and low <= plan.world_size // nproc <= high):
            errors.append(
                ("nnodes", f"the plan's world size {plan.world_size} is not one of {low}..{high} × {nproc} ranks")
            )
    if launch.master_port is not None and not (
        isinstance(launch.master_port, int) and 1 <= launch.master_port <= 65535
    ):
        errors.append(("master_port", f"expected a TCP port 1-65535, got {launch.master_port!r}"))
    if not launch.command or not all(isinstance(c, str) and c for c in launch.command):
        errors.append(("command", f"expected the training script and its arguments, got {list(launch.command)!r}"))
    if not launch.job_name or any(c.isspace() for c in launch.job_name):
        errors.append(("job_name", f"expected a non-empty name without spaces, got {launch.job_name!r}"))
    if errors:
        raise LaunchError(errors)


def job_env(plan: MeshPlan, launch: LaunchSpec) -> dict[str, str]:
    """The ``MESHCTX_*`` environment of the job. An elastic job's world size (and so ``dp`` and the
    fingerprint) is only known once it runs, so those are left out for a node range."""
    env = {ENV_STRATEGY: plan.strategy.value, ENV_JOB_ID: launch.job_name}
    env |= {field.env: str(value) for field, value in plan.sizes.launch_values(elastic=launch.elastic)}
    if not launch.elastic:
        env[ENV_WORLD_SIZE] = str(plan.world_size)
        env[ENV_FINGERPRINT] = plan.fingerprint()
    return env


def _extent(plan: MeshPlan, axis: str) -> int:
    """Ranks in the aligned block that holds one group of ``axis`` (the layouts are row-major)."""
    if axis not in plan.layouts:
        return 1
    layout = plan.layouts[axis]
    return max((size * stride for size, stride in zip(layout.sizes, layout.strides)), default=1)


def group_block(plan: MeshPlan, group: Literal["model", "stage"]) -> int:
    """Consecutive ranks that must share a topology domain: every tp/cp/ep group (``model``), or a
    whole pipeline stage (``stage``)."""
    if group == "stage":
        return plan.world_size // plan.sizes.pp
    return lcm(*(_extent(plan, axis) for axis in ("tp", "cp", "ep")))
