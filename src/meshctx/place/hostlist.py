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


def _split_top_level(expression: str) -> list[str]:
    """Split at commas outside brackets."""
    pieces, depth, start = [], 0, 0
    for i, char in enumerate(expression):
        if char == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"hostlist {expression!r}: nested '[' at column {i + 1}")
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"hostlist {expression!r}: ']' without '[' at column {i + 1}")
        elif char == "," and depth == 0:
            pieces.append(expression[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"hostlist {expression!r}: '[' is never closed")
    pieces.append(expression[start:])
    return [p.strip() for p in pieces if p.strip()]


def _expand_bracket(body: str, expression: str, limit: int) -> list[str]:
    values: list[str] = []
    for item in body.split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"hostlist {expression!r}: empty item in [{body}]")
        low, dash, high = item.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"hostlist {expression!r}: [{body}] holds {item!r}, not a number or a range a-b")
        if not dash:
            values.append(low)
            continue
        start, stop, width = int(low), int(high), len(low)
        if stop < start:
            raise ValueError(f"hostlist {expression!r}: range {item} runs backwards; write {high}-{low}")
        if stop - start + 1 > limit:
            raise ValueError(f"hostlist {expression!r}: range {item} has more than {limit} names")
        values.extend(f"{n:0{width}d}" for n in range(start, stop + 1))
    return values


def _expand_piece(piece: str, expression: str, limit: int) -> list[str]:
    parts: list[list[str]] = []
    rest = piece
    while rest:
        open_at = rest.find("[")
        if open_at < 0:
            parts.append([rest])
            break
        close_at = rest.index("]", open_at)
        if open_at:
            parts.append([rest[:open_at]])
        parts.append(_expand_bracket(rest[open_at + 1 : close_at], expression, limit))
        rest = rest[close_at + 1 :]
    total = 1
    for options in parts:
        total *= len(options)
    if total > limit:
        raise ValueError(f"hostlist {expression!r}: {piece!r} expands to {total} names, more than {limit}")
    return ["".join(combo) for combo in product(*parts)]


def parse_hostlist(expression: str, *, limit: int = MAX_HOSTS) -> list[str]:
    """Every host name of a hostlist expression, in the order written (duplicates kept); more than ``limit``
    names is a ``ValueError`` raised before they are built (a service passes its node limit)."""
    names: list[str] = []
    for piece in _split_top_level(expression):
        names.extend(_expand_piece(piece, expression, limit))  # each piece bounded, then the sum
        if len(names) > limit:
            raise ValueError(f"hostlist {expression!r} expands to more than {limit} names")
    return names


def expand_hosts(value: str | Iterable[str], *, limit: int = MAX_HOSTS) -> list[str]:
    """A hostlist expression, or an iterable of names or expressions, as a flat list of at most ``limit`` names."""
    if isinstance(value, str):
        return parse_hostlist(value, limit=limit)
    names: list[str] = []
    for item in value:
        if "[" in item or "," in item:
            names.extend(parse_hostlist(item, limit=limit))
        else:
            names.append(item.strip())
        if len(names) > limit:
            raise ValueError(f"the allocation names more than {limit} hosts")
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
