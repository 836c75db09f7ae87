"""The service's one ``Registry``, opened by its first request rather than at start-up.

Opening it loads SQLAlchemy, the store and its dialect (~0.2 s CPU, a third of a start-up); start-up only needs
the schema checked (``schema.py``), which it does before the service says ready, so a server that never sees a
registry request never loads them, and the first one that does pays that once.
"""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Registry


class LazyRegistry:
    """``get()`` opens the ``Registry`` for ``url`` on the first call (once, whichever threads ask at once) and
    returns that same one after; ``close()`` disposes of its engine if it was opened."""

    def __init__(self, url: str, *, default_lease_s: int) -> None:
        self.url = url
        self.default_lease_s = default_lease_s
        self._registry: Registry | None = None
        self._lock = threading.Lock()

    def get(self) -> Registry:
        registry = self._registry
        if registry is None:
            with self._lock:
                if self._registry is None:
                    from .engine import make_engine
                    from .store import Registry

                    self._registry = Registry(make_engine(self.url), default_lease_s=self.default_lease_s)
                    # What start-up froze (app.py), these modules join: full collections skip them too.
                    gc.freeze()
                registry = self._registry
        return registry

    def close(self) -> None:
        with self._lock:
            if self._registry is not None:
                self._registry.engine.dispose()
                self._registry = None
