"""The data-parallel strategies and ONE table of what each does to the mesh: its axes, the axes flattened from
them, the size fields it cannot use, and whether it is pure replication. The rules, the layout, the suggestions
and the read-back of live meshes all read this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from .axes import MeshAxisName
from .frozen import EMPTY, FrozenDict
from .sizes import SIZE_FIELDS

A = MeshAxisName


class Strategy(str, Enum):
    """The data-parallel strategy, which decides the mesh axes."""

    FSDP2 = "fsdp2"
    MEGATRON_FSDP = "megatron_fsdp"
    DDP = "ddp"

    def __str__(self) -> str:
        return self.value


STRATEGY_ALIASES: dict[str, Strategy] = {
    "fsdp2": Strategy.FSDP2,
    "megatron_fsdp": Strategy.MEGATRON_FSDP,
    "megatron-fsdp": Strategy.MEGATRON_FSDP,
    "mfsdp": Strategy.MEGATRON_FSDP,
    "ddp": Strategy.DDP,
}


class NamesStrategy(Protocol):
    """A strategy config (``FSDP2Config``, ...): it names its strategy."""

    @property
    def strategy(self) -> Strategy: ...


StrategyLike = NamesStrategy | Strategy | str


def resolve_strategy(strategy: object) -> Strategy | None:
    """The strategy named by a config object, a ``Strategy`` or a name/alias; ``None`` if unknown."""
    if isinstance(strategy, Strategy):
        return strategy
    named = getattr(strategy, "strategy", None)
    if isinstance(named, Strategy):
        return named
    if isinstance(strategy, str):
        return STRATEGY_ALIASES.get(strategy.strip().lower())
    return None


#: What each size field turns on, for "strategy X does not support ..." messages.
FEATURE: dict[str, str] = {
    "tp_size": "tensor parallelism",
    "pp_size": "pipeline parallelism",
    "cp_size": "context parallelism",
    "ep_size": "expert parallelism",
    "dp_replicate_size": "HSDP replication (dp_replicate_size)",
}

#: The MoE mesh of one pipeline stage, when ep > 1 and the strategy has one.
MOE_AXES: tuple[MeshAxisName, ...] = (A.EP_SHARD, A.EP)


@dataclass(frozen=True, slots=True)
class StrategyRules:
    """What a strategy builds. ``mesh_axes`` is ``None`` when it builds no device mesh (DDP)."""

    mesh_axes: tuple[MeshAxisName, ...] | None
    #: Flattened axis → the mesh axes it merges (every one the strategy may register).
    flattened: Mapping[MeshAxisName, tuple[MeshAxisName, ...]] = field(default_factory=dict)
    #: The flattened axes exist only when cp > 1 (Megatron-FSDP's dp_cp).
    flattened_needs_cp: bool = False
    #: Size fields the strategy cannot use beyond 1.
    unsupported: tuple[str, ...] = ()
    #: Every data-parallel rank holds a full replica (dp_replicate = dp, dp_shard = 1).
    pure_replication: bool = False

    def supports(self, size_field: str) -> bool:
        return size_field not in self.unsupported

    @property
    def moe(self) -> bool:
        """Whether ep > 1 builds a MoE mesh."""
        return self.supports("ep_size")

    def flattened_for(self, cp: int) -> Mapping[MeshAxisName, tuple[MeshAxisName, ...]]:
        return EMPTY if self.flattened_needs_cp and cp == 1 else self.flattened


RULES: dict[Strategy, StrategyRules] = {
    Strategy.FSDP2: StrategyRules(
        mesh_axes=(A.PP, A.DP_REPLICATE, A.DP_SHARD, A.CP, A.TP),
        flattened=FrozenDict(
            {
                A.DP: (A.DP_REPLICATE, A.DP_SHARD),
                A.DP_SHARD_CP: (A.DP_SHARD, A.CP),
                A.DP_CP: (A.DP_REPLICATE, A.DP_SHARD, A.CP),
            }
        ),
    ),
    Strategy.MEGATRON_FSDP: StrategyRules(
        mesh_axes=(A.DP, A.CP, A.TP),
        flattened=FrozenDict({A.DP_CP: (A.DP, A.CP)}),
        flattened_needs_cp=True,
        unsupported=("pp_size", "ep_size", "dp_replicate_size"),
    ),
    Strategy.DDP: StrategyRules(
        mesh_axes=None,
        unsupported=tuple(f for f in SIZE_FIELDS if f != "dp_size"),
        pure_replication=True,
    ),
}


def strategy_of_axes(axes: tuple[MeshAxisName, ...]) -> Strategy | None:
    """The strategy whose device mesh has exactly these axes, in this order."""
    return next((s for s, rules in RULES.items() if rules.mesh_axes == axes), None)


def choices() -> str:
    """``fsdp2, megatron_fsdp (aliases megatron-fsdp, mfsdp) or ddp``: for messages."""
    names = []
    for strategy in Strategy:
        aliases = [alias for alias, s in STRATEGY_ALIASES.items() if s is strategy and alias != strategy.value]
        names.append(f"{strategy.value} (aliases {', '.join(aliases)})" if aliases else strategy.value)
    return ", ".join(names[:-1]) + " or " + names[-1]


def supporting(size_field: str) -> list[str]:
    """Names of the strategies that can use ``size_field`` beyond 1."""
    return [s.value for s, rules in RULES.items() if rules.supports(size_field)]
