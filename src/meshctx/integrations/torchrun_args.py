"""What a container's command tells about torchrun: ``--nnodes`` and ``--nproc-per-node`` (or the ``PET_*``
envs torchrun reads for an absent flag, or torchrun's defaults, 1 and 1).

Kubernetes expands ``$(NAME)`` in ``command``/``args`` from the container's literal ``env`` values, so
this does too — within ``MAX_COMMAND_CHARS`` in all (a 16 kB command of ``$(A)`` with a 100 kB ``A`` would
otherwise expand to 400 MB): a longer command is a ``CommandTooLong`` naming the limit. Flags are read up to
the training script: what follows belongs to the script.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import MeshctxError

LAUNCHERS = ("torch.distributed.run", "torch.distributed.launch")
#: torchrun flags that take no value (every other ``--flag`` is followed by one unless written ``--flag=value``).
SWITCHES = frozenset(
    {
        "--standalone",
        "-m",
        "--module",
        "--no-python",
        "--no_python",
        "--run-path",
        "--run_path",
        "--virtual-local-rank",
        "--virtual_local_rank",
    }
)
SHELL_BREAKS = frozenset({"&&", "||", ";", "|", "&"})
_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
#: Most characters a container's ``command`` and ``args`` may hold after ``$(VAR)`` expansion, all together: Linux
#: refuses a single argument longer than this (``MAX_ARG_STRLEN``), so no runnable ``bash -c`` line is longer.
MAX_COMMAND_CHARS = 1 << 17


class CommandTooLong(MeshctxError, ValueError):
    """``command`` and ``args`` hold more than ``MAX_COMMAND_CHARS`` characters once ``$(VAR)`` is expanded."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"{where} command and args are longer than {MAX_COMMAND_CHARS} characters once $(VAR) is expanded; "
            "meshctx reads at most that much (Linux runs no longer argument)"
        )


@dataclass(frozen=True)
class TorchrunArgs:
    """The raw ``--nnodes`` and ``--nproc-per-node`` values (strings, as written) and where each came from."""

    nnodes: str
    nnodes_source: str
    nproc_per_node: str
    nproc_source: str


def literal_env(container: Mapping[str, object]) -> dict[str, str]:
    """The container's ``env`` entries that hold a literal ``value`` (not ``valueFrom``)."""
    env = container.get("env")
    out: dict[str, str] = {}
    for entry in env if isinstance(env, list) else []:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str) and isinstance(entry.get("value"), str):
            out[entry["name"]] = entry["value"]
    return out


def _words(container: Mapping[str, object], env: Mapping[str, str], where: str = "the container") -> list[str]:
    words: list[str] = []
    budget = MAX_COMMAND_CHARS

    def spend(size: int) -> None:
        nonlocal budget
        budget -= size
        if budget < 0:
            raise CommandTooLong(where)

    def expand(match: re.Match[str]) -> str:
        value = env.get(match.group(1), match.group(0))
        spend(len(value) - len(match.group(0)))  # counted before the expanded text is ever joined
        return value

    for key in ("command", "args"):
        parts = container.get(key)
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, str):
                continue
            spend(len(part))
            part = _VARIABLE.sub(expand, part) if "$(" in part else part
            if any(c.isspace() for c in part):  # a shell line, e.g. the argument of bash -c
                try:
                    words.extend(shlex.split(part))
                except ValueError:
                    words.extend(part.split())
            else:
                words.append(part)
    return words


def _start(words: Sequence[str]) -> int | None:
    """Index of the first word after ``torchrun`` / ``python -m torch.distributed.run``."""
    for index, word in enumerate(words):
        if word.rsplit("/", 1)[-1] == "torchrun":
            return index + 1
        if word in LAUNCHERS and index > 0 and words[index - 1] == "-m":
            return index + 1
    return None


def _flags(words: Sequence[str]) -> dict[str, str]:
    """``--name value`` / ``--name=value`` up to the script, with ``_`` spelled ``-``."""
    flags: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if word in SHELL_BREAKS or not word.startswith("-"):
            break
        name, sep, value = word.partition("=")
        if not sep and word not in SWITCHES:
            value = words[index + 1] if index + 1 < len(words) else ""
            index += 1
        flags[name.replace("_", "-")] = value if (sep or word not in SWITCHES) else ""
        index += 1
    return flags


def read_torchrun(container: Mapping[str, object], where: str) -> TorchrunArgs | None:
    """torchrun's settings in this container, or ``None`` when its command does not run torchrun; raises
    ``CommandTooLong`` for a command longer than ``MAX_COMMAND_CHARS`` once expanded."""
    env = literal_env(container)
    words = _words(container, env, where)
    start = _start(words)
    if start is None:
        return None
    flags = _flags(words[start:])
    if "--standalone" in flags and "--nnodes" not in flags:
        nnodes, nnodes_source = "1", f"{where} torchrun --standalone"
    elif "--nnodes" in flags:
        nnodes, nnodes_source = flags["--nnodes"], f"{where} torchrun --nnodes"
    elif "PET_NNODES" in env:
        nnodes, nnodes_source = env["PET_NNODES"], f"{where} env PET_NNODES"
    else:
        nnodes, nnodes_source = "1", f"{where} torchrun --nnodes (unset: 1)"
    if "--nproc-per-node" in flags:
        nproc, nproc_source = flags["--nproc-per-node"], f"{where} torchrun --nproc-per-node"
    elif "PET_NPROC_PER_NODE" in env:
        nproc, nproc_source = env["PET_NPROC_PER_NODE"], f"{where} env PET_NPROC_PER_NODE"
    else:
        nproc, nproc_source = "1", f"{where} torchrun --nproc-per-node (unset: 1)"
    return TorchrunArgs(nnodes, nnodes_source, nproc, nproc_source)
