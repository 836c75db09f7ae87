"""Problems with a placement request: stable codes (to join ``meshctx.plan.problems.Code`` later)."""

from __future__ import annotations

from enum import Enum
from typing import cast

from ..plan.problems import Code, Problem, Severity, TopologyError


class PlaceCode(str, Enum):
    """Stable codes of placement problems; they never change meaning."""

    EMPTY_ALLOCATION = "empty_allocation"
    UNKNOWN_NODE = "unknown_node"
    DUPLICATE_HOST = "duplicate_host"
    GPU_COUNT_MISMATCH = "gpu_count_mismatch"
    ALLOCATION_SIZE_MISMATCH = "allocation_size_mismatch"
    # checking an admitted Kueue topologyAssignment against an order
    ASSIGNMENT_NO_HOSTNAME_LEVEL = "assignment_no_hostname_level"
    ASSIGNMENT_HOSTS_DIFFER = "assignment_hosts_differ"
    ASSIGNMENT_PODS_PER_NODE = "assignment_pods_per_node"
    ASSIGNMENT_DOMAIN_MISMATCH = "assignment_domain_mismatch"

    def __str__(self) -> str:
        return self.value


def place_error(code: PlaceCode, fields: tuple[str, ...], message: str, hint: str) -> Problem:
    # Problem.code is typed as the planner's Code; PlaceCode shares its str-enum shape (``.value``).
    return Problem(cast(Code, code), Severity.ERROR, fields, message, hint)


class PlacementError(TopologyError):
    """Raised by ``place`` with every problem of the request, not just the first."""


def sample(names: list[str], limit: int = 8) -> str:
    """``a, b, c`` or ``a, b, … (12 in all)``."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … ({len(names)} in all)"
