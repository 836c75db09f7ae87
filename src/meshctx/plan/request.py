"""``TopologyRequest``: one validate/layout request, the same whether it came from the CLI or HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import ParallelismSizes
from .planner import ValidationReport, validate_topology
from .shapes import ClusterShape, ModelShape


@dataclass(frozen=True, kw_only=True)
class TopologyRequest:
    strategy: str = "fsdp2"
    sizes: ParallelismSizes = field(default_factory=ParallelismSizes)
    world_size: int | None = None
    nnodes: int | str | None = None
    nproc_per_node: int | None = None
    ranks: tuple[int, ...] | None = None
    cluster: ClusterShape | None = None
    model: ModelShape | None = None
    cp_ring_degree: int = 1
    cp_ulysses_degree: int | None = None

    def validate(self, *, suggest: bool = True) -> ValidationReport:
        return validate_topology(
            self.strategy,
            self.sizes,
            world_size=self.world_size,
            nnodes=self.nnodes,
            nproc_per_node=self.nproc_per_node,
            ranks=self.ranks,
            cluster=self.cluster,
            model=self.model,
            suggest=suggest,
            cp_ring_degree=self.cp_ring_degree,
            cp_ulysses_degree=self.cp_ulysses_degree,
        )

    def to_dict(self) -> dict[str, object]:
        """The wire form (the body of ``POST /v1/validate``); unset optional parts are left out."""
        out: dict[str, object] = {"strategy": self.strategy, "sizes": self.sizes.to_dict()}
        if self.world_size is not None:
            out["world_size"] = self.world_size
        if self.nnodes is not None:
            out["nnodes"] = self.nnodes
        if self.nproc_per_node is not None:
            out["nproc_per_node"] = self.nproc_per_node
        if self.ranks is not None:
            out["ranks"] = list(self.ranks)
        if self.cluster is not None:
            out["cluster"] = self.cluster.to_dict()
        if self.model is not None:
            out["model"] = {k: v for k, v in self.model.to_dict().items() if v is not None}
        if (self.cp_ring_degree, self.cp_ulysses_degree) != (1, None):
            out["cp_ring_degree"] = self.cp_ring_degree
            out["cp_ulysses_degree"] = self.cp_ulysses_degree
        return out
