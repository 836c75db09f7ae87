"""What a launched job learns from its environment: the ``MESHCTX_*`` variables ``meshctx render`` writes
(``meshctx.launch.spec.job_env``, names from the size table) and torch's ``WORLD_SIZE``.

Torch-free, so a job (or a test) can check its environment, and the plan it implies, before any process group
exists. ``MeshContext.from_env`` builds the meshes from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import FieldErrors
from ..launch.spec import ENV_FINGERPRINT, ENV_STRATEGY, ENV_WORLD_SIZE
from ..plan import MeshPlan, plan_mesh
from ..plan.sizes import SIZE_BY_NAME, SIZE_TABLE, ParallelismSizes
from ..plan.strategies import STRATEGY_ALIASES, Strategy, resolve_strategy

#: torch's launchers (torchrun, its ``PET_*`` twins, Kubeflow's runtimes) give every process this.
TORCH_WORLD_SIZE = "WORLD_SIZE"
#: Size fields a rendering always sets; ``dp`` is left out for an elastic node range (known only at run time).
REQUIRED_SIZES = tuple(f for f in SIZE_TABLE if f.name != "dp_size")
FINGERPRINT_FORM = re.compile(r"^sha256:[0-9a-f]{64}$")
RENDER_HINT = "set it as the meshctx render output does (export the lines it prints, or run its script)"


class LaunchEnvError(FieldErrors):
    """The job's environment cannot describe a mesh; ``errors`` names every bad variable with a fix."""

    def describe(self) -> str:
        lines = "\n".join(f"  {name}: {detail}" for name, detail in self.errors)
        return f"the job's environment does not describe a meshctx launch:\n{lines}"


@dataclass(frozen=True)
class LaunchEnv:
    """The launch as the environment states it; ``fingerprint`` is ``None`` for an elastic job."""

    strategy: Strategy
    sizes: ParallelismSizes
    world_size: int
    fingerprint: str | None
    #: ``MESHCTX_DP_REPLICATE_SIZE`` of a strategy that derives it (ddp replicates over every dp rank,
    #: megatron_fsdp not at all): checked against the plan, never passed on as a request.
    derived_dp_replicate: int | None = None

    def plan(self) -> MeshPlan:
        """The plan these settings imply (raises ``TopologyError`` with every problem if they have none, and
        ``LaunchEnvError`` if the derived replica count is not the plan's)."""
        plan = plan_mesh(self.strategy, self.sizes, world_size=self.world_size)
        derived = self.derived_dp_replicate
        if derived is not None and derived != plan.sizes.dp_replicate:
            name = SIZE_BY_NAME["dp_replicate_size"].env
            raise LaunchEnvError(
                [
                    (
                        name,
                        f"{self.strategy.value} on {self.world_size} ranks has dp_replicate {plan.sizes.dp_replicate}, "
                        f"got {derived}; only fsdp2 takes a replica count: set {name}={plan.sizes.dp_replicate}",
                    )
                ]
            )
        return plan

    def check_fingerprint(self, built: str) -> None:
        """Raise ``LaunchEnvError`` naming both fingerprints unless ``built`` is the one the launch expects."""
        if self.fingerprint is not None and built != self.fingerprint:
            raise LaunchEnvError(
                [
                    (
                        ENV_FINGERPRINT,
                        f"the launch expects {self.fingerprint} but this job's mesh is {built} "
                        f"({self.strategy.value}, {self.world_size} ranks, {self.sizes.to_dict()}); the variables were "
                        "edited after rendering or come from another plan: render again and use all its variables",
                    )
                ]
            )


def _positive(environ: Mapping[str, str], name: str, errors: list[tuple[str, str]], fix: str) -> int | None:
    text = environ.get(name)
    if text is None:
        errors.append((name, f"not set; {fix}"))
        return None
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if value < 1:
        errors.append((name, f"expected an integer ≥ 1, got {text!r}; {fix}"))
        return None
    return value


def read_launch_env(environ: Mapping[str, str] | None = None) -> LaunchEnv:
    """Read and check every variable at once (``os.environ`` by default); raises ``LaunchEnvError`` listing
    every missing or malformed one, and when ``MESHCTX_WORLD_SIZE`` disagrees with torch's ``WORLD_SIZE``."""
    env = os.environ if environ is None else environ
    errors: list[tuple[str, str]] = []
    strategy: Strategy | None = None
    text = env.get(ENV_STRATEGY)
    if text is None:
        errors.append((ENV_STRATEGY, f"not set; {RENDER_HINT}"))
    else:
        strategy = resolve_strategy(text)
        if strategy is None:
            errors.append(
                (ENV_STRATEGY, f"unknown strategy {text!r}; use one of {', '.join(sorted(STRATEGY_ALIASES))}")
            )
    values: dict[str, int | None] = {}
    for size in SIZE_TABLE:
        if size in REQUIRED_SIZES or size.env in env:
            values[size.name] = _positive(env, size.env, errors, RENDER_HINT)
    world = _positive(env, TORCH_WORLD_SIZE, errors, "start the job with torchrun (the rendered command) or set it")
    planned_world = _positive(env, ENV_WORLD_SIZE, errors, RENDER_HINT) if ENV_WORLD_SIZE in env else None
    if world is not None and planned_world is not None and world != planned_world:
        errors.append(
            (
                ENV_WORLD_SIZE,
                f"the launch was rendered for {planned_world} ranks but torch started {world} "
                f"({TORCH_WORLD_SIZE}={world}); render for the nodes × processes you run, or start "
                f"{planned_world} processes",
            )
        )
    fingerprint = env.get(ENV_FINGERPRINT)
    if fingerprint is not None and not FINGERPRINT_FORM.match(fingerprint):
        errors.append((ENV_FINGERPRINT, f"expected sha256: and 64 hex digits, got {fingerprint!r}; {RENDER_HINT}"))
    if errors or strategy is None or world is None:
        raise LaunchEnvError(errors)
    derived = values.pop("dp_replicate_size") if strategy is not Strategy.FSDP2 else None
    sizes = ParallelismSizes(**{k: v for k, v in values.items() if v is not None})
    return LaunchEnv(strategy, sizes, world, fingerprint, derived)
