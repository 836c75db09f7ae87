"""The most work one admission check may ask of the planner, applied to a ``TopologyRequest`` before any
arithmetic: world size, elastic span and integer range. The service applies its own configured limits
(``TopologyBody.checked_request``) through the same ``Check`` hook; these defaults are the service's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..plan import parse_nnodes
from ..plan.request import TopologyRequest
from .job_sizes import MAX_COUNT

#: A limit check: the request's (field, detail) pairs that exceed what may be planned; empty when none.
Check = Callable[[TopologyRequest], list[tuple[str, str]]]

DEFAULT_MAX_WORLD_SIZE = 1 << 24
DEFAULT_MAX_NNODES_SPAN = 1024


@dataclass(frozen=True)
class WorkLimits:
    max_world_size: int = DEFAULT_MAX_WORLD_SIZE
    max_nnodes_span: int = DEFAULT_MAX_NNODES_SPAN

    def problems(self, request: TopologyRequest) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        numbers = {"world_size": request.world_size, "nproc_per_node": request.nproc_per_node}
        numbers |= {f"sizes.{k}": v for k, v in request.sizes.to_dict().items()}
        if request.model is not None:
            numbers |= {f"model.{k}": v for k, v in request.model.to_dict().items()}
        for name, value in numbers.items():
            if isinstance(value, int) and value > MAX_COUNT:
                errors.append((name, f"{name} is larger than {MAX_COUNT}"))
        if request.world_size is not None and request.world_size > self.max_world_size:
            errors.append(("world_size", f"world_size {request.world_size} exceeds {self.max_world_size}"))
        node_range = parse_nnodes(request.nnodes) if request.nnodes is not None else None
        nproc = request.nproc_per_node
        if node_range is not None and isinstance(nproc, int):
            low, high = node_range
            if high > MAX_COUNT or high * nproc > self.max_world_size:
                errors.append(
                    (
                        "nnodes",
                        f"nnodes {high} × nproc_per_node {nproc} exceeds the largest world size {self.max_world_size}",
                    )
                )
            if high - low + 1 > self.max_nnodes_span:
                errors.append(("nnodes", f"range {low}:{high} spans more than {self.max_nnodes_span} node counts"))
        return errors
