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


class MissingExtra(MeshctxError, ModuleNotFoundError):
    """An optional dependency is not installed: the message names the extra that brings it
    (``pip install meshctx`` has no dependencies; ``[torch]``, ``[client]`` and ``[service]`` add them)."""

    def __init__(self, what: str, module: str, extra: str) -> None:
        super().__init__(f"{what} needs {module}: pip install 'meshctx[{extra}]'", name=module)
        self.extra = extra


def require(module: str, extra: str, what: str) -> None:
    """Raise ``MissingExtra`` unless ``module`` can be imported (checked before the real, lazy import)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtra(what, module, extra)
