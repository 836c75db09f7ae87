"""Bounded memos of pure functions: plain dicts that keep their newest entries (insertion order)."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key`` and drop the oldest entries beyond ``limit``; returns ``value``.

    Safe to call from several threads: a race only ever drops an entry early (a recomputation later)."""
    memo[key] = value
    while len(memo) > limit:
        try:
            del memo[next(iter(memo))]
        except (KeyError, RuntimeError, StopIteration):  # another thread trimmed it first
            break
    return value
