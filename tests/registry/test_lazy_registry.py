"""The service's registry opened on first use (``registry/lazy.py``): once, whichever threads ask at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from meshctx_service.registry import LazyRegistry, ensure_schema


def test_threads_asking_at_once_share_one_registry_until_closed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meshctx.db'}"
    ensure_schema(url)
    lazy = LazyRegistry(url, default_lease_s=30)
    with ThreadPoolExecutor(8) as pool:
        opened = list(pool.map(lambda _: lazy.get(), range(32)))
    assert len({id(registry) for registry in opened}) == 1
    registry = opened[0]
    assert registry.default_lease_s == 30
    assert registry.list_clusters("acme").items == []
    lazy.close()
    assert lazy.get() is not registry  # closed: the next use opens a new one
    lazy.close()
