"""Heap given back to the system after a big placement.

A 16,384-node ``POST /v1/place`` builds a few hundred thousand small objects (the parsed body, the topology, the
answer). Python frees them, but glibc's malloc keeps the freed pages, so the process stayed at 111–117 MB after one
such request (issue 23). ``malloc_trim(0)`` returns them; it runs after the response is sent, in a thread
(ctypes releases the GIL), and only after bodies larger than ``TRIM_AFTER_BYTES``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

#: Bodies above this size are followed by a trim (a 1,000-node placement is about 100 kB).
TRIM_AFTER_BYTES = 256 * 1024


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim  # glibc only
    except (OSError, AttributeError, TypeError):  # musl, macOS: nothing to call
        return None
    return trim


_TRIM = _malloc_trim()


def give_back_memory() -> None:
    """Return the allocator's free pages to the system (a no-op without glibc). No ``gc.collect()``: the parse
    and the answer hold no cycles, and a full collection would hold the GIL for tens of milliseconds."""
    if _TRIM is not None:
        _TRIM(0)
