"""The library's error tree drawn in ``meshctx/errors.py`` is the one the code has, and every exception class of
the library derives from ``MeshctxError`` (``TaskRejected`` and ``FieldProblem`` used to escape it)."""

from __future__ import annotations

import importlib
import pkgutil
import re
import warnings

import pytest

import meshctx
from meshctx import errors
from meshctx.errors import MeshctxError

LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)")


def _drawn() -> dict[str, str | None]:
    """name → parent name, as drawn in the module's docstring."""
    doc = errors.__doc__ or ""
    start = doc.index("    MeshctxError")
    drawn: dict[str, str | None] = {}
    parents: list[tuple[int, str]] = []
    for line in doc[start : doc.index("\n\n", start)].splitlines():
        match = LINE.match(line[4:])
        assert match, line
        depth = len(match["indent"])
        while parents and parents[-1][0] >= depth:
            parents.pop()
        drawn[match["name"]] = parents[-1][1] if parents else None
        parents.append((depth, match["name"]))
    return drawn


def _library_classes() -> list[type[BaseException]]:
    """Every exception class defined in a module of ``meshctx`` (all of them imported; torch is installed here)."""
    found = []
    for info in pkgutil.walk_packages(meshctx.__path__, "meshctx."):
        if info.name.endswith(("skypilot_admin", "__main__")):  # SkyPilot itself (tests/skypilot); runs the CLI
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == info.name:
                found.append(value)
    return found


@pytest.mark.torch
def test_every_exception_class_derives_from_meshctx_error_and_is_drawn() -> None:
    pytest.importorskip("torch")
    drawn = _drawn()
    classes = _library_classes()
    assert {c.__name__ for c in classes} >= {"TaskRejected", "FieldProblem", "TopologyError", "MeshBuildError"}
    for cls in classes:
        assert issubclass(cls, MeshctxError), f"{cls.__module__}.{cls.__name__} escapes MeshctxError"
        assert cls.__name__ in drawn, f"{cls.__module__}.{cls.__name__} is not drawn in meshctx/errors.py"
        if cls is not MeshctxError:
            parent = next(base for base in cls.__mro__[1:] if issubclass(base, MeshctxError))
            assert drawn[cls.__name__] == parent.__name__, cls
    assert set(drawn) == {c.__name__ for c in classes}, set(drawn) - {c.__name__ for c in classes}


def test_the_client_errors_are_not_named_like_the_services() -> None:
    from meshctx import client

    assert "ServiceError" not in client.__all__ and client.ClientError is errors.ClientError
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert client.ServiceError is client.ClientError  # the 0.1.0 name, kept as a deprecated alias
    assert caught and issubclass(caught[0].category, DeprecationWarning)
    assert issubclass(client.ProblemError, client.ClientError) and issubclass(client.ServiceUnreachable, MeshctxError)
