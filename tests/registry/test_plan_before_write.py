"""Planning, the capacity check and placement run before the write transaction (issue 23): while another
transaction holds the cluster's lock (PostgreSQL: its row; SQLite: the database's write lock), a registration that
does not fit (too few free GPUs, or an allocation placement refuses) is refused at once, without waiting for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import text

from meshctx_service.registry import CapacityError, InvalidTopologyError, Registry
from tests.registry.registrar import fsdp2


def racks(count: int) -> dict[str, Any]:
    return {"nodes": [{"name": f"h{i}", "gpus": 8, "nvlink_domain": None, "leaf": f"l{i // 32}"} for i in range(count)]}


@contextmanager
def cluster_locked(registry: Registry, name: str) -> Iterator[None]:
    """Another writer holding the cluster's lock until the block ends."""
    engine = registry.engine
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("COMMIT")  # leave the driver's implicit transaction, then take the lock
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(text("SELECT id FROM clusters WHERE name = :n FOR UPDATE"), {"n": name})
        try:
            yield
        finally:
            connection.rollback() if engine.dialect.name != "sqlite" else connection.exec_driver_sql("ROLLBACK")


def quick(call: Any, limit: float = 5.0) -> float:
    start = time.monotonic()
    call()
    elapsed = time.monotonic() - start
    assert elapsed < limit, elapsed
    return elapsed


@pytest.mark.timeout(120)
def test_refusals_do_not_wait_for_the_clusters_lock(registry: Registry) -> None:
    registry.put_cluster("acme", "big", nodes=256, gpus_per_node=8, topology=racks(256))
    registry.register_job("acme", "holder", fsdp2(1024), cluster="big", nodes="h[0-127]")
    with cluster_locked(registry, "big"):
        with pytest.raises(CapacityError):  # 1,024 free GPUs, 2,048 asked: refused before placing or locking
            quick(lambda: registry.register_job("acme", "too-big", fsdp2(2048), cluster="big", nodes="h[0-255]"))
        with pytest.raises(InvalidTopologyError) as placed:  # a bad allocation: refused by placement, unlocked
            quick(lambda: registry.register_job("acme", "bad", fsdp2(1024), cluster="big", nodes="h[128-254],x1"))
        assert placed.value.code == "invalid_placement"
