"""Memory and the GIL around big placements: the heap given back afterwards, no cyclic collection during one.

A 16,384-node ``POST /v1/place`` builds a few hundred thousand small objects (the parsed body, the topology, the
answer). Python frees them, but glibc's malloc keeps the freed pages, so the process stayed at 111–117 MB after one
such request (issue 23). ``malloc_trim(0)`` returns them; it runs after the response is sent, in a thread
(ctypes releases the GIL), and only after bodies larger than ``TRIM_AFTER_BYTES``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


_pause_lock = threading.Lock()
_pausers = 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic cyclic collection while a placement runs. A 16,384-node placement allocates a few hundred
    thousand containers, which triggers full (generation 2) collections of 90–160 ms each, every one holding the
    GIL, so ``/livez`` on the event loop waited as long. Everything a placement builds is freed by reference
    counting (it makes no cycles), so nothing is lost; concurrent placements share the pause (a count), and
    automatic collection resumes when the last one ends."""
    global _pausers
    with _pause_lock:
        _pausers += 1
        if _pausers == 1:
            gc.disable()
    try:
        yield
    finally:
        with _pause_lock:
            _pausers -= 1
            if _pausers == 0:
                gc.enable()
