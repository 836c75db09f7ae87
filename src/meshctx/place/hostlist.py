"""Slurm hostlist expressions: ``gpu-[001-032,040]``, ``a[1-3]-b[1-2]``, ``n1,n2``.

Parsing expands every bracket (the leftmost bracket varies slowest), keeping zero padding: a range's
width is the width of its lower bound as written. Writing compresses on the last number of each name,
as ``scontrol show hostlist`` does, so ``parse_hostlist(format_hostlist(names))`` gives the same names.
Natural order (``node2`` before ``node10``) is here too, because both baselines and the compressed
form need it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from itertools import product

_DIGITS = re.compile(r"(\d+)")
_TRAILING_NUMBER = re.compile(r"\d+$")
#: A hostlist may not expand past this many names (a typo like ``n[1-999999999]`` must not hang).
MAX_HOSTS = 1_000_000


def natural_key(name: str) -> tuple[object, ...]:
    """Sort key comparing digit runs as numbers: ``node2 < node10``; ties broken by the raw string."""
    parts = _DIGITS.split(name)
    key: list[object] = list(parts)
    key[1::2] = map(int, parts[1::2])
    return (tuple(key), name)


def quoted(text: str, limit: int = 40) -> str:
    """``text`` for an error message: its repr when short, else a repr of its first ``limit`` characters and its
    length (a hostile 60 kB expression must not come back whole in every message)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def _split_top_level(expression: str) -> list[str]:
    """Split at commas outside brackets."""
    pieces, depth, start = [], 0, 0
    for i, char in enumerate(expression):
        if char == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"hostlist {quoted(expression)}: nested '[' at column {i + 1}")
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"hostlist {quoted(expression)}: ']' without '[' at column {i + 1}")
        elif char == "," and depth == 0:
            pieces.append(expression[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"hostlist {quoted(expression)}: '[' is never closed")
    pieces.append(expression[start:])
    return [p.strip() for p in pieces if p.strip()]


#: A bracket as ``(digits, stop, width)`` runs: ``low`` as written, the last number, the zero-padded width.
_Runs = list[tuple[str, int, int]]
_MAX_DIGITS = 18  # a host number longer than this is a typo; int() of it stays cheap


def _bracket_runs(body: str, expression: str) -> tuple[_Runs, int]:
    """The runs of one bracket and how many names they give, without building any name."""
    runs: _Runs = []
    count = 0
    for item in body.split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"hostlist {quoted(expression)}: empty item in [{quoted(body)[1:-1]}]")
        low, dash, high = item.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"hostlist {quoted(expression)}: {quoted(item)} is not a number or a range a-b")
        if len(low) > _MAX_DIGITS or len(high) > _MAX_DIGITS:
            raise ValueError(f"hostlist {quoted(expression)}: {quoted(item)} has a number over {_MAX_DIGITS} digits")
        start = int(low)
        stop = int(high) if dash else start
        if stop < start:
            raise ValueError(f"hostlist {quoted(expression)}: range {item} runs backwards; write {high}-{low}")
        runs.append((low, stop, len(low)))
        count += stop - start + 1
    return runs, count


def _piece_parts(piece: str, expression: str, limit: int) -> tuple[list[str | _Runs], int]:
    """A piece as literal text and bracket runs, and the number of names it expands to (counted, not built;
    capped at ``limit + 1`` so the product of many brackets stays a small number)."""
    parts: list[str | _Runs] = []
    total = 1
    rest = piece
    while rest:
        open_at = rest.find("[")
        if open_at < 0:
            parts.append(rest)
            break
        close_at = rest.index("]", open_at)
        if open_at:
            parts.append(rest[:open_at])
        runs, count = _bracket_runs(rest[open_at + 1 : close_at], expression)
        parts.append(runs)
        total = min(total * count, limit + 1)
        rest = rest[close_at + 1 :]
    return parts, total


def _values(part: str | _Runs) -> list[str]:
    if isinstance(part, str):
        return [part]
    return [f"{n:0{width}d}" for low, stop, width in part for n in range(int(low), stop + 1)]


def parse_hostlist(expression: str, *, limit: int = MAX_HOSTS) -> list[str]:
    """Every host name of a hostlist expression, in the order written (duplicates kept). The names of all its
    pieces and brackets are counted before any is built: more than ``limit`` in all is a ``ValueError`` (a
    service passes its node limit), so a few bytes cannot make millions of strings."""
    pieces = [_piece_parts(piece, expression, limit) for piece in _split_top_level(expression)]
    total = 0
    for _, count in pieces:
        total += count
        if total > limit:
            raise ValueError(
                f"hostlist {quoted(expression)} expands to more than {limit} names; "
                "name only the allocated hosts (the limit is the node limit: MESHCTX_MAX_PLACE_NODES on a service)"
            )
    names: list[str] = []
    for parts, _ in pieces:
        names.extend("".join(combo) for combo in product(*map(_values, parts)))
    return names


def expand_hosts(value: str | Iterable[str], *, limit: int = MAX_HOSTS) -> list[str]:
    """A hostlist expression, or an iterable of names or expressions, as a flat list of at most ``limit`` names
    (counted over every item, before each is built)."""
    if isinstance(value, str):
        return parse_hostlist(value, limit=limit)
    names: list[str] = []
    for item in value:
        if len(names) >= limit:
            raise ValueError(f"the allocation names more than {limit} hosts")
        if "[" in item or "," in item:
            names.extend(parse_hostlist(item, limit=limit - len(names)))
        else:
            names.append(item.strip())
    return names


def _ranges(numbers: list[tuple[int, str]]) -> list[str]:
    """Compress sorted (value, digits) pairs into ``a-b`` runs that reproduce each name's digits."""
    out: list[str] = []
    i = 0
    while i < len(numbers):
        digits = numbers[i][1]
        width = len(digits)
        j = i
        while (
            j + 1 < len(numbers)
            and numbers[j + 1][0] == numbers[j][0] + 1
            and f"{numbers[j + 1][0]:0{width}d}" == numbers[j + 1][1]
        ):
            j += 1
        out.append(digits if j == i else f"{digits}-{numbers[j][1]}")
        i = j + 1
    return out


def format_hostlist(names: Sequence[str]) -> str:
    """The compressed hostlist of ``names`` (duplicates dropped): names sharing everything but their last
    number become one bracket, numbers sorted; prefixes keep their first-seen order."""
    groups: dict[str, list[tuple[int, str]]] = {}
    seen: set[str] = set()
    order: list[tuple[str, bool]] = []
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        match = _TRAILING_NUMBER.search(name)
        if match is None or "[" in name or "," in name:
            order.append((name, False))
            continue
        prefix, digits = name[: match.start()], match.group()
        if prefix not in groups:
            groups[prefix] = []
            order.append((prefix, True))
        groups[prefix].append((int(digits), digits))
    pieces: list[str] = []
    for key, numbered in order:
        if not numbered:
            pieces.append(key)
            continue
        numbers = groups[key]
        if len(numbers) == 1:  # most cloud names: nothing to merge
            pieces.append(key + numbers[0][1])
            continue
        ranges = _ranges(sorted(set(numbers), key=lambda pair: (pair[0], len(pair[1]))))
        if len(ranges) == 1 and "-" not in ranges[0]:
            pieces.append(key + ranges[0])
        else:
            pieces.append(f"{key}[{','.join(ranges)}]")
    return ",".join(pieces)
