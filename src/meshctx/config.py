"""The distributed strategy configs (NeMo Automodel's ``components/distributed/config.py``).

Plain, torch-free dataclasses with NeMo Automodel's names, so a recipe that builds them works with either
package. Policy objects that need torch (mixed precision, offload) are typed ``Any``. ``ParallelismSizes`` and
``Strategy`` live in ``meshctx.plan`` and are re-exported here, where NeMo users look for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .plan.sizes import SIZE_FIELDS, ParallelismSizes, ParallelSizes
from .plan.strategies import STRATEGY_ALIASES, Strategy, resolve_strategy

__all__ = [
    "SIZE_FIELDS",
    "STRATEGY_ALIASES",
    "STRATEGY_CONFIGS",
    "DDPConfig",
    "FSDP2Config",
    "MegatronFSDPConfig",
    "ParallelSizes",
    "ParallelismSizes",
    "Strategy",
    "StrategyConfig",
    "resolve_strategy",
]


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
