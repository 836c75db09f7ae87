"""What NeMo Automodel 0.7.0's ``MeshContext.build`` does with a request, so meshctx's can refuse like it.

``MeshContext.build`` plans first and refuses every invalid request; this module gives the refusal NeMo's face:
the exception type NeMo (or torch, underneath it) raises for the same request and NeMo's message as the prefix,
followed by meshctx's problems with their codes and hints. Where NeMo raises nothing (it would build a partial
or inconsistent mesh) the prefix is NeMo's own sentence for that kind of mistake; docs/nemo-compat.md lists
each such case. Strategy configs are recognized from meshctx and from NeMo, whose classes are matched by
module and name so NeMo is never imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import DDPConfig, FSDP2Config, MegatronFSDPConfig
from ..plan.problems import Problem, TopologyError
from ..plan.strategies import Strategy

NEMO_CONFIG_MODULE = "nemo_automodel.components.distributed.config"
_BY_CLASS: dict[str, Strategy] = {
    "FSDP2Config": Strategy.FSDP2,
    "MegatronFSDPConfig": Strategy.MEGATRON_FSDP,
    "DDPConfig": Strategy.DDP,
}


def strategy_of(config: object) -> Strategy | None:
    """The strategy of a meshctx or NeMo strategy config; ``None`` for anything else (strings included:
    names belong to the recipe layer, as in NeMo)."""
    if isinstance(config, (FSDP2Config, MegatronFSDPConfig, DDPConfig)):
        return config.strategy
    kind = type(config)
    if kind.__module__ == NEMO_CONFIG_MODULE:
        return _BY_CLASS.get(kind.__name__)
    return None


class MeshBuildError(TopologyError):
    """A refused ``MeshContext.build``: NeMo's message first, then every problem with its code and hint."""

    def __init__(self, nemo_message: str, problems: Sequence[Problem]) -> None:
        super().__init__(list(problems))
        self.nemo_message = nemo_message
        self.args = (f"{nemo_message}\n{self.args[0]}",)


class MeshBuildRuntimeError(MeshBuildError, RuntimeError):
    """The same, where NeMo's failure is a ``RuntimeError`` (torch refusing a mesh larger than the job)."""


def _degree(value: object) -> int:
    """NeMo reads a missing, non-integer or non-positive degree as 1."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def nemo_failure(
    strategy: Strategy | None,
    config: object,
    sizes: Any,
    *,
    world_size: int,
    ranks: Sequence[int] | None,
    job_size: int | None,
) -> tuple[type[Exception], str] | None:
    """The exception NeMo's ``MeshContext.build`` raises first for this request, or ``None`` if it builds.

    ``world_size`` is the one NeMo uses (the argument, else the job's); ``job_size`` is the default group's size.
    """
    replicate = sizes.dp_replicate_size
    if isinstance(replicate, int) and replicate > 1 and strategy is not Strategy.FSDP2:
        return ValueError, "dp_replicate_size is only supported with FSDP2Config"
    tp, cp, pp, ep = (_degree(getattr(sizes, f)) for f in ("tp_size", "cp_size", "pp_size", "ep_size"))
    if strategy is None:
        return ValueError, f"Unknown distributed strategy config type: {type(config)}"
    if strategy is Strategy.DDP:
        for name, value in (("tensor", tp), ("pipeline", pp), ("context", cp), ("expert", ep)):
            if value > 1:
                return ValueError, f"ddp does not support {name} parallelism"
        return None
    if strategy is Strategy.MEGATRON_FSDP:
        for name, value in (("pipeline", pp), ("expert", ep)):
            if value > 1:
                return ValueError, f"megatron_fsdp does not support {name} parallelism"
        pp = 1
    dp_size = sizes.dp_size
    if isinstance(dp_size, int) and dp_size > 0:
        dp = dp_size
    else:
        factors = (tp, cp, pp) if strategy is Strategy.FSDP2 else (tp, cp)
        names = "tp_size * cp_size * pp_size" if strategy is Strategy.FSDP2 else "tp_size * cp_size"
        non_dp = tp * cp * pp
        if world_size % non_dp:
            shown = " * ".join(map(str, factors))
            return ValueError, f"world_size ({world_size}) must be divisible by ({names}) ({shown} = {non_dp})"
        dp = world_size // non_dp
    if strategy is Strategy.FSDP2:
        rep = _degree(replicate)
        if dp % rep:
            return ValueError, "dp_size must be a multiple of dp_replicate_size"
        if rep >= dp and rep != 1:
            return ValueError, (
                f"dp_replicate_size={rep} must be less than dp_size={dp} since DDP usecase is not supported by FSDP2"
            )
        non_pp = dp * cp * tp
        if non_pp % ep:
            return ValueError, f"non_pp_size={non_pp} must be a multiple of ep_size={ep}"
    mesh_size = pp * dp * cp * tp
    if ranks is None:
        if job_size is not None and mesh_size > job_size:
            message = f"Mesh should not be bigger than default world size {job_size}, but found {mesh_size} ranks!"
            return RuntimeError, message
        return None
    if len(ranks) != mesh_size:
        return ValueError, f"mesh ranks ({len(ranks)}) must match mesh size ({mesh_size})"
    if len(set(ranks)) != len(ranks):
        return ValueError, "mesh ranks must be unique"
    if job_size is not None:
        for rank in ranks:
            if isinstance(rank, int) and not 0 <= rank < job_size:
                return ValueError, (
                    f"Rank {rank} is out of range. Valid ranks are 0 to {job_size - 1} (world_size={job_size})"
                )
    return None


#: meshctx's own refusals (where NeMo builds, or fails another way): the docs/nemo-compat.md row of each and the
#: NeMo-style sentence its message starts with. Every refusal NeMo does not make takes its prefix from here, and
#: tests/nemo/test_compat_doc.py checks that each has its row.
OWN_REFUSALS: dict[str, str] = {
    "partial-mesh": "mesh ranks ({world}) must match mesh size ({mesh_size})",
    "invalid-size": "Expected {field} > 0",
    "cp-degrees": "ring_degree * ulysses_degree must equal the cp mesh size",
    "ddp-ranks": "invalid distributed topology",
}


def nemo_style_failure(
    problems: Sequence[Problem], *, mesh_size: int | None, world: int | None
) -> tuple[type[Exception], str]:
    """NeMo's sentence for a refusal NeMo itself does not make. A partial mesh is a ``RuntimeError`` too: on the
    ranks left out of it NeMo fails inside torch with one, so either ``except`` clause catches it on every rank."""
    if mesh_size is not None and world is not None and mesh_size != world:
        return RuntimeError, OWN_REFUSALS["partial-mesh"].format(world=world, mesh_size=mesh_size)
    codes = [p.code.value for p in problems]
    if "invalid_size" in codes:
        return ValueError, OWN_REFUSALS["invalid-size"].format(field=problems[codes.index("invalid_size")].fields[0])
    if "cp_degrees_mismatch" in codes:
        return ValueError, OWN_REFUSALS["cp-degrees"]
    return ValueError, OWN_REFUSALS["ddp-ranks"]


def refusal(
    problems: Sequence[Problem],
    nemo: tuple[type[Exception], str] | None,
    *,
    mesh_size: int | None = None,
    world: int | None = None,
) -> MeshBuildError:
    """The exception ``MeshContext.build`` raises: NeMo's type and message prefix, meshctx's problems."""
    kind, message = nemo if nemo is not None else nemo_style_failure(problems, mesh_size=mesh_size, world=world)
    cls = MeshBuildRuntimeError if kind is RuntimeError else MeshBuildError
    return cls(message, problems)
