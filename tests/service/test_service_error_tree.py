"""The service's error tree drawn in ``http/errors.py`` is the one the code has: every class, its parent, its
status and code, and where it is defined; every exception class of the service is in the picture."""

from __future__ import annotations

import importlib
import pkgutil
import re

import meshctx_service
from meshctx_service.http import errors
from meshctx_service.http.errors import ServiceError

#: ``├── Name    422 code  [module]``: the name, then optionally status, code and the module it is defined in.
LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)(?:\s+(?P<status>\d{3}))?(?:\s+(?P<code>[a-z_]+))?")
MODULE = re.compile(r"\[([\w.]+)\]")


def _drawn() -> dict[str, tuple[str | None, int | None, str | None, str | None]]:
    """name → (parent, status, code, module) as drawn in the docstring."""
    doc = errors.__doc__ or ""
    block = doc[doc.index("    ServiceError") : doc.index("\n\n", doc.index("    ServiceError"))]
    drawn: dict[str, tuple[str | None, int | None, str | None, str | None]] = {}
    parents: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = LINE.match(line[4:])
        assert match, line
        depth = len(match["indent"])
        while parents and parents[-1][0] >= depth:
            parents.pop()
        module = MODULE.search(line)
        status = int(match["status"]) if match["status"] else None
        drawn[match["name"]] = (parents[-1][1] if parents else None, status, match["code"], module and module[1])
        parents.append((depth, match["name"]))
    return drawn


def _all_modules() -> list[str]:
    names = [info.name for info in pkgutil.walk_packages(meshctx_service.__path__, "meshctx_service.")]
    return [name for name in names if ".migrations" not in name]


def test_the_drawn_tree_is_the_code_s_tree() -> None:
    for name in _all_modules():
        importlib.import_module(name)
    drawn = _drawn()
    seen = set()
    stack: list[type[ServiceError]] = [ServiceError]
    while stack:
        cls = stack.pop()
        seen.add(cls.__name__)
        assert cls.__name__ in drawn, f"{cls.__name__} ({cls.__module__}) is not drawn in http/errors.py"
        parent, status, code, module = drawn[cls.__name__]
        assert parent == (cls.__base__.__name__ if cls is not ServiceError else None), cls
        assert (status, code) == (cls.status, cls.code), cls
        if module is not None:
            assert cls.__module__ == f"meshctx_service.{module}", cls
        stack.extend(cls.__subclasses__())
    assert seen == set(drawn), set(drawn) - seen


def test_every_exception_class_of_the_service_is_a_service_error_or_named_as_not_answered() -> None:
    not_answered = {"SettingsError", "TokenConfigError", "_Retry", "_Exists", "_ClusterChanged"}
    assert all(f"``{name}``" in (errors.__doc__ or "") for name in not_answered)
    for name in _all_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == name:
                assert issubclass(value, ServiceError) or value.__name__ in not_answered, f"{name}.{value.__name__}"
