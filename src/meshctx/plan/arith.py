"""Small integer helpers for hints: divisors and the nearest valid values."""

from __future__ import annotations

from collections.abc import Sequence
from math import isqrt, log2
from typing import TypeGuard


def is_integer(value: object) -> TypeGuard[int]:
    """An ``int`` that is not a ``bool`` (``True`` is an ``int`` to Python, never a size to meshctx)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_size(value: object) -> TypeGuard[int]:
    """A usable parallel degree: an integer (not ``bool``) of at least 1."""
    return is_integer(value) and value >= 1


def divisors(n: int) -> list[int]:
    """All divisors of ``n`` (n ≥ 1), ascending."""
    small: list[int] = []
    large: list[int] = []
    for d in range(1, isqrt(n) + 1):
        if n % d == 0:
            small.append(d)
            if d != n // d:
                large.append(n // d)
    return small + large[::-1]


def nearest(candidates: list[int], target: int, count: int = 3) -> list[int]:
    """Up to ``count`` candidates closest to ``target`` on a log scale, ascending."""
    if not candidates:
        return []
    ranked = sorted(candidates, key=lambda c: (abs(log2(c) - log2(max(target, 1))), c))
    return sorted(ranked[:count])


def nearest_multiples(n: int, base: int) -> list[int]:
    """The multiples of ``base`` just below and just above ``n`` (below omitted when it is 0)."""
    below = (n // base) * base
    above = below + base if below != n else n
    return [m for m in dict.fromkeys((below, above)) if m > 0]


def join_or(values: Sequence[object]) -> str:
    """``[2, 4, 8]`` → ``"2, 4 or 8"``."""
    words = [str(v) for v in values]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]
