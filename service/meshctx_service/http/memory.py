"""Memory back after big requests (contract.md "Targets": RSS back at or below 100 MB within 60 s of any request).

A request that built large structures frees them, but glibc keeps the freed heap pages mapped for reuse, so the
process's RSS stays at its peak (measured: 179 MB a minute after a hostile placement burst). ``trim_soon`` runs
a full garbage collection and asks glibc to hand free pages back (``malloc_trim(0)``) after a request that ran
long (``SLOW_S``): at most once a ``EVERY_S``, on a thread of its own (ctypes releases the GIL for the call, and
the trim of a large heap takes milliseconds), never on the event loop. Without glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import threading
import time
from collections.abc import Callable

#: A request that took longer than this may have built large structures.
SLOW_S = 0.05
EVERY_S = 1.0
#: Wait this long first, so the request's last objects (its response) are freed before the trim.
AFTER_S = 0.1


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):  # no C library found, or not glibc's
        return None
    return trim


_TRIM = _malloc_trim()
_lock = threading.Lock()
_last = float("-inf")
_scheduled = False


def _trim() -> None:
    global _scheduled, _last
    try:
        # A request that failed deep inside a big computation leaves its frames (and what they held) in a cycle
        # with the exception's traceback: only a full collection frees them. The objects loaded at start-up are
        # frozen (app.py), so this walks the few the requests left, well under a millisecond.
        gc.collect()
        if _TRIM is not None:
            _TRIM(0)
    finally:
        with _lock:
            _scheduled, _last = False, time.monotonic()


def trim_soon(seconds: float) -> None:
    """After a request that took ``seconds``: schedule a trim if it was slow and none ran in the last second."""
    global _scheduled
    if _TRIM is None or seconds < SLOW_S:
        return
    with _lock:
        if _scheduled:
            return
        _scheduled = True
        delay = max(AFTER_S, _last + EVERY_S - time.monotonic())
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _trim()
        return
    loop.call_later(delay, lambda: threading.Thread(target=_trim, name="meshctx-trim", daemon=True).start())
