"""What ``meshctx place --json`` prints and ``POST /v1/place`` answers, built in one place for both.

The placement's ``to_dict()`` when the sizes and the allocation are valid; otherwise a report with
``valid: false`` and every problem (the shape of ``/v1/validate``'s answer, recognized by its ``valid`` key).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..launch.spec import DEFAULT_MASTER_PORT
from ..plan.request import TopologyRequest
from .placer import place
from .problems import PlacementError
from .topology import Topology


def refusal(error: PlacementError) -> dict[str, Any]:
    """A placement's problems in the validation report's shape (no plan, no suggestions)."""
    return {
        "valid": False,
        "problems": [p.to_dict() for p in error.problems],
        "warnings": [],
        "suggestions": [],
        "plan": None,
    }


def place_answer(
    request: TopologyRequest,
    topology: Topology,
    allocation: Sequence[str] | str | None,
    *,
    command: Sequence[str] | None = None,
    master_port: int = DEFAULT_MASTER_PORT,
    search: str = "default",
) -> dict[str, Any]:
    """Plan ``request``, then place it: the placement, the validation report when the sizes are invalid, or
    ``refusal`` when the allocation does not fit the topology or the plan. ``search`` is ``place``'s mode."""
    report = request.validate(suggest=True)
    if report.plan is None:
        return report.to_dict()
    try:
        placement = place(
            report.plan,
            topology,
            allocation,
            command=tuple(command or ("train.py",)),
            master_port=master_port,
            search=search,
        )
    except PlacementError as error:
        return refusal(error)
    return placement.to_dict()
