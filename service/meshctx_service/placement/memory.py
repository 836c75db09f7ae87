"""No cyclic garbage collection while a big placement runs (it holds the GIL); the heap it freed is handed back
after the response like any slow request's (``http/memory.py``).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
