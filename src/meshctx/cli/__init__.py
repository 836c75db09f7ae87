"""The ``meshctx`` command line: one module a command, sharing ``common``.

``validate`` and ``layout`` work offline or against a service (``--server URL``, same output), ``render`` writes
launcher settings, ``jobs``/``clusters`` talk to a registry, ``serve`` runs the service and ``db`` migrates its
database. Exit status: 0 valid, 1 invalid topology, 2 usage error, 3 the server could not answer.
"""

from __future__ import annotations

import argparse
import difflib
import io
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import TextIO

from .clusters import add_clusters_commands
from .common import EXIT_INVALID, EXIT_UNAVAILABLE, EXIT_USAGE, EXIT_VALID, ServerFailed, UsageError
from .db import add_db_commands
from .jobs import add_jobs_commands
from .layout import add_layout_command
from .place import add_place_command
from .render import add_render_command
from .serve import add_serve_command
from .validate import add_validate_command

__all__ = [
    "EXIT_INVALID",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "EXIT_VALID",
    "ServerFailed",
    "UsageError",
    "build_parser",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshctx", description="Plan and check device-mesh topologies.")
    parser.add_argument("--version", action="version", version=f"meshctx {_version()}")
    commands = parser.add_subparsers(dest="cli_command", required=True, metavar="COMMAND")
    for add in (
        add_validate_command,
        add_layout_command,
        add_place_command,
        add_serve_command,
        add_render_command,
        add_jobs_commands,
        add_clusters_commands,
        add_db_commands,
    ):
        add(commands)
    _name_subcommands(parser)
    return parser


def _version() -> str:
    try:
        return metadata.version("meshctx")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _name_subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Each (sub)command records its own parser and name, so errors found after parsing name it."""
    for name, sub in _subparsers(parser).items():
        full = f"{prefix} {name}".strip()
        sub.set_defaults(cli_parser=sub, cli_command=full)
        _name_subcommands(sub, full)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    found = {option for action in parser._actions for option in action.option_strings}
    for sub in _subparsers(parser).values():
        found |= _options(sub)
    return found


def _hyphenated(argv: list[str], known: set[str]) -> list[str]:
    """torchrun's spellings (``--nproc_per_node 8``, ``--nproc_per_node=8``) as meshctx's (``--nproc-per-node``);
    the training command after ``--command`` (or ``--``) is left as it is."""
    out: list[str] = []
    for i, token in enumerate(argv):
        if token in ("--", "--command"):
            return out + argv[i:]
        name, sep, value = token.partition("=")
        if name.startswith("--") and "_" in name and name not in known:
            candidate = "--" + name[2:].replace("_", "-")
            if candidate in known:
                token = candidate + sep + value
        out.append(token)
    return out


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse, with an unknown flag reported by the subcommand it was given to (and a close spelling)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub: argparse.ArgumentParser = getattr(args, "cli_parser", parser)
        known = _options(sub)
        hints = []
        for token in extra:
            close = difflib.get_close_matches(token.partition("=")[0], sorted(known), n=1)
            if close:
                hints.append(f"{token}: did you mean {close[0]}?")
        sub.error(f"unrecognized arguments: {' '.join(extra)}" + ("".join(f"\n  {h}" for h in hints)))
    return args


class _PipeSafe(io.TextIOBase):
    """stdout that stops writing, silently, once the reader went away (``meshctx ... --json | head``): the exit
    status stays the command's, and no ``BrokenPipeError`` traceback is printed."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.broken = True

    def writable(self) -> bool:
        return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, _hyphenated(list(sys.argv[1:] if argv is None else argv), _options(parser)))
    stdout = sys.stdout
    safe = _PipeSafe(stdout)
    sys.stdout = safe
    try:
        return int(args.handler(args))
    except UsageError as error:
        print(f"meshctx {args.cli_command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ServerFailed as error:
        print(f"meshctx {args.cli_command}: server error: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        safe.flush()
        sys.stdout = stdout
        if safe.broken:  # the interpreter's last flush of stdout would fail too: point it at /dev/null
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stdout.fileno())
            os.close(devnull)
