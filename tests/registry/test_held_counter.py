"""The cluster row's count of active jobs and held GPUs (what admission reads instead of summing every job)
stays equal to the sum over its active jobs through every kind of write, and migration 0002 backfills it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, insert, select

from meshctx_service.registry import Registry, make_engine, upgrade_database
from meshctx_service.registry.errors import CapacityError, ClusterInUseError
from meshctx_service.registry.models import Cluster, Job
from tests.registry.registrar import fsdp2


def _counters(registry: Registry, name: str) -> tuple[int, int]:
    with registry.engine.connect() as connection:
        row = connection.execute(select(Cluster.active_jobs, Cluster.held_gpus).where(Cluster.name == name)).one()
    return int(row[0]), int(row[1])


def _summed(registry: Registry, name: str) -> tuple[int, int]:
    query = select(func.count(Job.id), func.coalesce(func.sum(Job.gpus), 0)).where(
        Job.cluster_name == name, Job.state.in_(["registered", "running"])
    )
    with registry.engine.connect() as connection:
        count, gpus = connection.execute(query).one()
    return int(count), int(gpus)


def test_counters_follow_every_write(registry: Registry) -> None:
    registry.put_cluster("acme", "a", nodes=4, gpus_per_node=8)  # 32 GPUs
    registry.put_cluster("acme", "b", nodes=2, gpus_per_node=8)  # 16 GPUs

    def consistent() -> tuple[int, int]:
        for name in ("a", "b"):
            assert _counters(registry, name) == _summed(registry, name), name
        return _counters(registry, "a")

    first = registry.register_job("acme", "j1", fsdp2(16, tp=2), cluster="a").job
    assert consistent() == (1, 16)
    registry.register_job("acme", "j2", fsdp2(8, tp=2), cluster="a")
    assert consistent() == (2, 24)
    with pytest.raises(CapacityError):
        registry.register_job("acme", "j3", fsdp2(16, tp=2), cluster="a")  # 24 + 16 > 32
    assert consistent() == (2, 24)
    # Replacing a registered job (If-Match) swaps its GPUs, on the same cluster or onto another.
    second = registry.register_job("acme", "j1", fsdp2(8, tp=2), cluster="a", if_match=first.etag).job
    assert consistent() == (2, 16)
    registry.register_job("acme", "j1", fsdp2(16, tp=2), cluster="b", if_match=second.etag)
    assert consistent() == (1, 8) and _counters(registry, "b") == (1, 16)
    # Running keeps the GPUs; finishing or failing frees them; deleting an active job frees them.
    registry.set_state("acme", "j2", "running")
    assert consistent() == (1, 8)
    registry.set_state("acme", "j2", "finished")
    assert consistent() == (0, 0)
    with pytest.raises(ClusterInUseError):
        registry.delete_cluster("acme", "b")
    registry.delete_job("acme", "j1")
    assert consistent() == (0, 0) and _counters(registry, "b") == (0, 0)
    registry.delete_job("acme", "j2")  # an ended job holds nothing: deleting it changes nothing
    assert consistent() == (0, 0)
    registry.delete_cluster("acme", "b")


def test_migration_0002_backfills_the_counters(db_url: str) -> None:
    upgrade_database(db_url, "0001")
    engine = make_engine(db_url)
    now = datetime.now(timezone.utc)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO clusters (tenant, name, nodes, gpus_per_node, version, created_at, updated_at) "
                "VALUES ('acme', 'a', 8, 8, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
            rows = [
                {"state": state, "gpus": gpus, "job_id": f"j{i}", "cluster_name": cluster}
                for i, (state, gpus, cluster) in enumerate(
                    [("registered", 8, "a"), ("running", 16, "a"), ("finished", 32, "a"), ("running", 4, None)]
                )
            ]
            table = Job.__table__
            columns = {c.name for c in table.columns}
            connection.execute(
                insert(table),
                [
                    {
                        k: v
                        for k, v in {
                            "tenant": "acme",
                            "labels": {},
                            "request": {},
                            "plan": {},
                            "fingerprint": "sha256:0",
                            "body_digest": "0",
                            "version": 1,
                            "created_at": now,
                            "updated_at": now,
                            **row,
                        }.items()
                        if k in columns
                    }
                    for row in rows
                ],
            )
    finally:
        engine.dispose()
    upgrade_database(db_url)
    engine = make_engine(db_url)
    try:
        registry = Registry(engine)
        assert _counters(registry, "a") == (2, 24)
    finally:
        engine.dispose()
