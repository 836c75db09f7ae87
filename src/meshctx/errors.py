"""The one base of meshctx's errors, so ``except MeshctxError`` catches whatever the library raises on purpose.

Errors about input carry every problem found, not only the first: ``TopologyError`` its planner ``problems``,
``FieldErrors`` (launch settings, recipes) its ``(field, detail)`` pairs. Errors of bad input are also
``ValueError``s, as they always were.
"""

from __future__ import annotations

from collections.abc import Iterable


class MeshctxError(Exception):
    """Base class of every error meshctx raises on purpose."""


class FieldErrors(MeshctxError, ValueError):
    """Input that cannot be used; ``errors`` holds a ``(field, detail)`` pair for every problem."""

    def __init__(self, errors: Iterable[tuple[str, str]]) -> None:
        self.errors: list[tuple[str, str]] = list(errors)
        super().__init__(self.describe())

    def describe(self) -> str:
        return "; ".join(f"{field}: {detail}" for field, detail in self.errors)
