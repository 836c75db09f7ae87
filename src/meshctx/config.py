"""Requested parallelism sizes and the distributed strategy configs.

These are plain, torch-free dataclasses with NeMo Automodel's names, so a recipe that builds them works
with either package. Policy objects that need torch (mixed precision, offload) are typed ``Any``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ParallelismSizes:
    """What the user asked for; ``None`` for ``dp_size`` means "infer from the world size"."""

    dp_size: int | None = None
    dp_replicate_size: int | None = None
    tp_size: int = 1
    pp_size: int = 1
    cp_size: int = 1
    ep_size: int = 1

    def to_dict(self) -> dict[str, int | None]:
        return {
            "tp_size": self.tp_size,
            "pp_size": self.pp_size,
            "cp_size": self.cp_size,
            "ep_size": self.ep_size,
            "dp_size": self.dp_size,
            "dp_replicate_size": self.dp_replicate_size,
        }


#: Alias used by the design documents and the wire format.
ParallelSizes = ParallelismSizes

SIZE_FIELDS: tuple[str, ...] = ("tp_size", "pp_size", "cp_size", "ep_size", "dp_size", "dp_replicate_size")


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


@dataclass
class FSDP2Config:
    """FSDP2 (optionally HSDP) options; the mesh is (pp, dp_replicate, dp_shard, cp, tp)."""

    sequence_parallel: bool = False
    tp_plan: dict[str, Any] | None = None
    mp_policy: Any = None
    offload_policy: Any = None
    activation_checkpointing: bool = False
    defer_fsdp_grad_sync: bool = True
    reshard_after_forward: bool | None = None
    enable_async_tensor_parallel: bool = False
    enable_compile: bool = False

    strategy = Strategy.FSDP2


@dataclass
class MegatronFSDPConfig:
    """Megatron-FSDP options; the mesh is (dp, cp, tp), no pipeline or expert parallelism."""

    zero_dp_strategy: int = 3
    megatron_fsdp_unit_modules: list[str] | None = None
    init_fsdp_with_meta_device: bool = False
    grad_reduce_in_fp32: bool = False
    preserve_fp32_weights: bool = False
    overlap_grad_reduce: bool = True
    overlap_param_gather: bool = True
    check_for_nan_in_grad: bool = True
    average_in_collective: bool = False
    activation_checkpointing: bool = False
    sequence_parallel: bool = False

    strategy = Strategy.MEGATRON_FSDP


@dataclass
class DDPConfig:
    """Plain data parallelism: no device mesh, every rank holds a full replica."""

    activation_checkpointing: bool = False

    strategy = Strategy.DDP


StrategyConfig = FSDP2Config | MegatronFSDPConfig | DDPConfig

STRATEGY_CONFIGS: dict[Strategy, type[FSDP2Config] | type[MegatronFSDPConfig] | type[DDPConfig]] = {
    Strategy.FSDP2: FSDP2Config,
    Strategy.MEGATRON_FSDP: MegatronFSDPConfig,
    Strategy.DDP: DDPConfig,
}


def resolve_strategy(strategy: object) -> Strategy | None:
    """The strategy named by a config object, a ``Strategy`` or a name/alias; ``None`` if unknown."""
    if isinstance(strategy, Strategy):
        return strategy
    if isinstance(strategy, (FSDP2Config, MegatronFSDPConfig, DDPConfig)):
        return strategy.strategy
    if isinstance(strategy, str):
        return STRATEGY_ALIASES.get(strategy.strip().lower())
    return None
