"""Problems with a placement request; their codes are members of the one catalogue, ``meshctx.plan.problems.Code``."""

from __future__ import annotations

from ..plan.problems import Code, Problem, Severity, TopologyError


def place_error(code: Code, fields: tuple[str, ...], message: str, hint: str) -> Problem:
    return Problem(code, Severity.ERROR, fields, message, hint)


class PlacementError(TopologyError):
    """Raised by ``place`` with every problem of the request, not just the first."""


def sample(names: list[str], limit: int = 8) -> str:
    """``a, b, c`` or ``a, b, … (12 in all)``."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … ({len(names)} in all)"
