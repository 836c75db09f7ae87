"""Optional context for a plan: the cluster the job runs on and the model it trains."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, kw_only=True)
class ClusterShape:
    """Rank ``r`` runs on node ``r // gpus_per_node`` (launcher order); an NVLink domain holds
    ``nvlink_domain`` consecutive ranks (e.g. 72 on a GB200 NVL72 rack), when given."""

    gpus_per_node: int
    nvlink_domain: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        return {"gpus_per_node": self.gpus_per_node, "nvlink_domain": self.nvlink_domain}


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """The model dimensions that constrain the sizes; names follow Hugging Face configs."""

    num_attention_heads: int | None = None
    num_key_value_heads: int | None = None
    num_experts: int | None = None
    num_hidden_layers: int | None = None
    seq_length: int | None = None
    global_batch_size: int | None = None
    micro_batch_size: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


MODEL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ModelShape))
