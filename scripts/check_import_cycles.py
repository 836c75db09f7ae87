#!/usr/bin/env python3
"""Report import cycles among the modules of one or more packages (stdlib only).

Every ``import``/``from … import`` counts, wherever it is written: at module level, inside functions and under
``if TYPE_CHECKING:``. A lazy import still ties two modules together for a reader, so a cycle through one is
still a cycle. Relative imports are resolved; ``from pkg import name`` counts as an import of ``pkg.name`` when
that is a module, else of ``pkg``. Importing a package counts as importing its ``__init__``.

    python scripts/check_import_cycles.py src/meshctx [service/meshctx_service ...]
        [--forbid meshctx=meshctx_service --allow meshctx.cli.common]

Exit status 1 when a strongly connected component has more than one module (or a module imports itself), or
when a ``--forbid A=B`` rule is broken: a module of package ``A`` imports package ``B`` other than from a module
named with ``--allow``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from pathlib import Path


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for the package directory ``root`` (its name is the package's)."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_package(name: str, files: dict[str, Path]) -> bool:
    return name in files and files[name].name == "__init__.py"


def imported_names(module: str, path: Path, files: dict[str, Path]) -> set[str]:
    """The dotted names ``module`` imports (absolute, possibly outside ``files``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if _is_package(module, files) else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in files else base)
    return found


def _owner(name: str, files: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` is, or lies inside (``a.b.c`` → ``a.b`` when only that exists)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in files:
            return candidate
        parts.pop()
    return None


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = {_owner(name, files) for name in imported_names(module, path, files)}
        graph[module] = {t for t in targets if t is not None}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components with a cycle only (size > 1, or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    cycles.append(sorted(component))
    return sorted(cycles)


def forbidden_imports(files: dict[str, Path], rules: list[tuple[str, str]], allowed: set[str]) -> list[str]:
    """``module imports target`` for every import of package ``B`` by a module of package ``A`` (rule ``A=B``)."""
    broken: list[str] = []
    for module, path in files.items():
        if module in allowed:
            continue
        for source, target in rules:
            if module != source and not module.startswith(source + "."):
                continue
            for name in sorted(imported_names(module, path, files)):
                if name == target or name.startswith(target + "."):
                    broken.append(f"{module} imports {name} (only {', '.join(sorted(allowed)) or 'nothing'} may)")
    return broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path, help="package directories, e.g. src/meshctx")
    parser.add_argument("--forbid", action="append", default=[], metavar="A=B", help="package A must not import B")
    parser.add_argument("--allow", action="append", default=[], metavar="MODULE", help="exempt from --forbid")
    args = parser.parse_args(argv)
    files: dict[str, Path] = {}
    for root in args.roots:
        if not (root / "__init__.py").is_file():
            parser.error(f"{root} is not a package directory")
        files |= module_files(root)
    cycles = strongly_connected(import_graph(files))
    rules: list[tuple[str, str]] = []
    for rule in args.forbid:
        source, sep, target = rule.partition("=")
        if not (source and sep and target):
            parser.error(f"--forbid takes A=B, got {rule!r}")
        rules.append((source, target))
    broken = forbidden_imports(files, rules, set(args.allow))
    for component in cycles:
        print("import cycle: " + " ↔ ".join(component))
    for line in broken:
        print("forbidden import: " + line)
    if cycles or broken:
        return 1
    print(f"no import cycles among {len(files)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
