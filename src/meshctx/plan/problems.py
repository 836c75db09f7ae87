"""Problems found in a topology request: stable codes, the fields they concern, numbers and a fix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from ..errors import MeshctxError
from .wire import str_list


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"

    def __str__(self) -> str:
        return self.value


class Code(str, Enum):
    """Stable problem codes. New codes may be added; existing ones never change meaning."""

    INVALID_SIZE = "invalid_size"
    UNKNOWN_STRATEGY = "unknown_strategy"
    WORLD_SIZE_MISMATCH = "world_size_mismatch"
    WORLD_SIZE_NOT_DIVISIBLE = "world_size_not_divisible"
    DP_REPLICATE_NOT_DIVISOR = "dp_replicate_not_divisor"
    DP_REPLICATE_EQUALS_DP = "dp_replicate_equals_dp"
    STRATEGY_UNSUPPORTED_AXIS = "strategy_unsupported_axis"
    EP_NOT_DIVISOR = "ep_not_divisor"
    INVALID_RANKS = "invalid_ranks"
    ELASTIC_RANGE_INVALID = "elastic_range_invalid"
    # cluster shape (warnings)
    AXIS_SPANS_NODES = "axis_spans_nodes"
    AXIS_SPANS_NVLINK_DOMAIN = "axis_spans_nvlink_domain"
    # model shape
    HEADS_NOT_DIVISIBLE = "heads_not_divisible"
    KV_HEADS_NOT_DIVISIBLE = "kv_heads_not_divisible"
    EXPERTS_NOT_DIVISIBLE = "experts_not_divisible"
    LAYERS_FEWER_THAN_PP = "layers_fewer_than_pp"
    SEQ_LEN_NOT_DIVISIBLE = "seq_len_not_divisible"
    BATCH_NOT_DIVISIBLE = "batch_not_divisible"
    # context parallelism split into ring attention × Ulysses (NeMo 0.7.0's cp_ring_degree, cp_ulysses_degree)
    CP_DEGREES_MISMATCH = "cp_degrees_mismatch"

    # ---- registry: a topology registered on a cluster (the service adds these to the planner's problems) ----
    CLUSTER_SHAPE_MISMATCH = "cluster_shape_mismatch"
    NPROC_EXCEEDS_GPUS_PER_NODE = "nproc_exceeds_gpus_per_node"
    ELASTIC_RANGE_NOT_REGISTRABLE = "elastic_range_not_registrable"
    CLUSTER_TOO_SMALL = "cluster_too_small"

    # ---- placement: ordering allocated nodes by topology (meshctx.place) ----
    EMPTY_ALLOCATION = "empty_allocation"
    UNKNOWN_NODE = "unknown_node"
    DUPLICATE_HOST = "duplicate_host"
    GPU_COUNT_MISMATCH = "gpu_count_mismatch"
    ALLOCATION_SIZE_MISMATCH = "allocation_size_mismatch"
    INVALID_HOST_NAME = "invalid_host_name"
    # checking an admitted Kueue topologyAssignment against an order
    ASSIGNMENT_NO_HOSTNAME_LEVEL = "assignment_no_hostname_level"
    ASSIGNMENT_HOSTS_DIFFER = "assignment_hosts_differ"
    ASSIGNMENT_PODS_PER_NODE = "assignment_pods_per_node"
    ASSIGNMENT_DOMAIN_MISMATCH = "assignment_domain_mismatch"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Problem:
    code: Code
    severity: Severity
    fields: tuple[str, ...]
    message: str
    hint: str

    @classmethod
    def error(cls, code: Code, fields: tuple[str, ...], message: str, hint: str) -> Problem:
        return cls(code, Severity.ERROR, fields, message, hint)

    @classmethod
    def warning(cls, code: Code, fields: tuple[str, ...], message: str, hint: str) -> Problem:
        return cls(code, Severity.WARNING, fields, message, hint)

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "fields": list(self.fields),
            "message": self.message,
            "hint": self.hint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Problem:
        return cls(
            Code(str(data["code"])),
            Severity(str(data["severity"])),
            tuple(str_list(data["fields"], "fields")),
            str(data["message"]),
            str(data["hint"]),
        )

    def __str__(self) -> str:
        return f"{self.code.value} [{', '.join(self.fields)}]: {self.message} Hint: {self.hint}"


class TopologyError(MeshctxError, ValueError):
    """Raised when a topology cannot be built; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        lines = [f"invalid topology: {count} problem{'s' if count != 1 else ''}"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(p.code.value for p in self.problems)
