"""Leases and held nodes through the repository layer on SQLite and PostgreSQL: an active job not heard from in
time is lost and frees its GPUs and nodes; heartbeats, attestations and repeated registrations renew it; a lost
job never comes back; two active jobs never hold one node."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from meshctx_service.registry import (
    CapacityError,
    IllegalTransitionError,
    InvalidInputError,
    InvalidTopologyError,
    JobState,
    NotFoundError,
    Registry,
)
from meshctx_service.registry.errors import JobEndedError, NodesInUseError
from tests.registry.registrar import fsdp2


def _counters(registry: Registry, cluster: str) -> tuple[int, int, int, int]:
    """The cluster's stored counters and what its active jobs really hold (they must agree)."""
    with registry.engine.connect() as connection:
        active, held = connection.execute(
            text("SELECT active_jobs, held_gpus FROM clusters WHERE name = :n"), {"n": cluster}
        ).one()
        count, total = connection.execute(
            text(
                "SELECT COUNT(*), COALESCE(SUM(gpus), 0) FROM jobs WHERE cluster_name = :n "
                "AND state IN ('registered', 'running')"
            ),
            {"n": cluster},
        ).one()
    return active, held, count, total


def test_an_expired_lease_loses_the_job_and_frees_its_gpus(registry: Registry) -> None:
    registry.put_cluster("acme", "pool", nodes=2, gpus_per_node=8)
    short = registry.register_job("acme", "short", fsdp2(8), cluster="pool", lease_seconds=1).job
    assert short.lease_seconds == 1 and short.lease_expires_at is not None
    assert short.lease_expires_at > datetime.now(timezone.utc)
    registry.register_job("acme", "kept", fsdp2(8), cluster="pool", lease_seconds=0)
    with pytest.raises(CapacityError):
        registry.register_job("acme", "next", fsdp2(8), cluster="pool")
    time.sleep(1.2)
    assert registry.register_job("acme", "next", fsdp2(8), cluster="pool").created  # short's GPUs are free
    lost = registry.get_job("acme", "short")
    assert lost.state is JobState.LOST and lost.lease_expires_at is None and lost.version == short.version + 1
    assert registry.get_job("acme", "kept").state is JobState.REGISTERED  # no lease: never lost
    with pytest.raises(JobEndedError) as ended:
        registry.heartbeat("acme", "short")
    assert ended.value.code == "job_ended" and "lease ran out" in str(ended.value)
    with pytest.raises(IllegalTransitionError, match="final"):
        registry.set_state("acme", "short", "running")
    with pytest.raises(IllegalTransitionError):
        registry.attest("acme", "short", short.fingerprint)
    assert _counters(registry, "pool") == (2, 16, 2, 16)


def test_a_read_sees_an_expired_job_lost(registry: Registry) -> None:
    registry.put_cluster("acme", "pool", nodes=1, gpus_per_node=8)
    registry.register_job("acme", "j", fsdp2(8), cluster="pool", lease_seconds=1)
    registry.register_job("acme", "free", fsdp2(8), lease_seconds=1)  # on no cluster: lost as well
    time.sleep(1.2)
    assert registry.get_job("acme", "j").state is JobState.LOST
    assert registry.get_job("acme", "free").state is JobState.LOST
    assert _counters(registry, "pool") == (0, 0, 0, 0)


def test_heartbeats_attestations_and_repeats_renew(registry: Registry) -> None:
    registry.put_cluster("acme", "pool", nodes=1, gpus_per_node=8)
    job = registry.register_job("acme", "j", fsdp2(8), cluster="pool", lease_seconds=1).job
    assert job.lease_expires_at is not None
    deadline = job.lease_expires_at
    for renew in (
        lambda: registry.heartbeat("acme", "j").lease_expires_at,
        lambda: (registry.attest("acme", "j", job.fingerprint), registry.get_job("acme", "j").lease_expires_at)[1],
        lambda: registry.register_job("acme", "j", fsdp2(8), cluster="pool", lease_seconds=1).job.lease_expires_at,
    ):
        time.sleep(0.6)
        renewed = renew()
        assert renewed is not None and renewed > deadline
        deadline = renewed
    time.sleep(0.6)  # 2.4 s after registering, 0.6 s after the last renewal
    assert registry.get_job("acme", "j").state is JobState.RUNNING
    assert registry.heartbeat("acme", "j").state is JobState.RUNNING


def test_no_lease_and_bad_leases(registry: Registry) -> None:
    job = registry.register_job("acme", "j", fsdp2(8), lease_seconds=0).job
    assert (job.lease_seconds, job.lease_expires_at) == (0, None)
    assert registry.heartbeat("acme", "j").lease_expires_at is None
    default = Registry(registry.engine, default_lease_s=30).register_job("acme", "d", fsdp2(8)).job
    assert default.lease_seconds == 30
    for bad in (-1, 10**9, True):
        with pytest.raises(InvalidInputError) as err:
            registry.register_job("acme", "bad", fsdp2(8), lease_seconds=bad)
        assert err.value.errors[0]["field"] == "lease_seconds"
    registry.set_state("acme", "j", "lost")  # a reconciler may say so
    with pytest.raises(JobEndedError):
        registry.heartbeat("acme", "j")


def test_expiry_races_heartbeats_and_registrations_without_double_free(registry: Registry) -> None:
    """Many threads register, heartbeat and finish leased jobs on one small cluster while leases run out: the
    cluster's counters always equal what its active jobs hold, and a lost job never comes back."""
    registry.put_cluster("acme", "pool", nodes=4, gpus_per_node=8)
    lost_seen: set[str] = set()

    def client(number: int) -> list[str]:
        problems = []
        for turn in range(12):
            job_id = f"c{number}-{turn}"
            try:
                registry.register_job("acme", job_id, fsdp2(8), cluster="pool", lease_seconds=1)
            except CapacityError:
                time.sleep(0.1)
                continue
            if turn % 3 == 0:
                continue  # abandoned: its lease runs out
            time.sleep(0.3 + 0.1 * (turn % 4))
            try:
                registry.heartbeat("acme", job_id)
            except JobEndedError:
                lost_seen.add(job_id)
            if turn % 3 == 1:
                try:
                    registry.set_state("acme", job_id, "failed")
                except IllegalTransitionError:
                    lost_seen.add(job_id)
        return problems

    with ThreadPoolExecutor(6) as pool:
        assert [p for f in [pool.submit(client, n) for n in range(6)] for p in f.result(timeout=120)] == []
    time.sleep(1.2)
    registry.register_job("acme", "last", fsdp2(8), cluster="pool", lease_seconds=0)  # settles every lease
    active, held, count, total = _counters(registry, "pool")
    assert (active, held) == (count, total) == (1, 8)
    for job_id in lost_seen:
        assert registry.get_job("acme", job_id).state in (JobState.LOST, JobState.FAILED)


def test_overlapping_nodes_are_refused_until_the_holder_ends(registry: Registry) -> None:
    registry.put_cluster("acme", "bare", nodes=8, gpus_per_node=4)
    first = registry.register_job("acme", "a", fsdp2(8), cluster="bare", nodes="gpu[1-2]", lease_seconds=1).job
    assert first.nodes == ["gpu1", "gpu2"] and first.placement is None  # held, not placed: no topology
    registry.register_job("acme", "b", fsdp2(8), cluster="bare", nodes="gpu[3-4]")
    with pytest.raises(NodesInUseError) as clash:
        registry.register_job("acme", "c", fsdp2(16), cluster="bare", nodes="gpu[2-5]")
    assert clash.value.code == "nodes_in_use" and clash.value.status == 409
    assert clash.value.hosts == ["gpu2", "gpu3", "gpu4"]
    assert clash.value.jobs == {"a": ["gpu2"], "b": ["gpu3", "gpu4"]}
    assert "a holds gpu2" in str(clash.value)
    occupancy = registry.occupancy("acme", "bare")
    assert occupancy["occupancy"] == [
        {"node": "gpu1", "job": "a"},
        {"node": "gpu2", "job": "a"},
        {"node": "gpu3", "job": "b"},
        {"node": "gpu4", "job": "b"},
    ]
    assert (occupancy["free_gpus"], occupancy["held_nodes"]) == (16, 4)
    registry.set_state("acme", "b", "failed")
    with pytest.raises(NodesInUseError) as still:
        registry.register_job("acme", "c", fsdp2(16), cluster="bare", nodes="gpu[2-5]")
    assert still.value.hosts == ["gpu2"]
    time.sleep(1.2)  # a's lease runs out
    assert registry.register_job("acme", "c", fsdp2(16), cluster="bare", nodes="gpu[2-5]").created
    assert registry.get_job("acme", "a").state is JobState.LOST
    held = {row["node"]: row["job"] for row in registry.occupancy("acme", "bare")["occupancy"]}
    assert held == {"gpu2": "c", "gpu3": "c", "gpu4": "c", "gpu5": "c"}
    registry.delete_job("acme", "c")
    assert registry.occupancy("acme", "bare")["occupancy"] == []
    registry.register_job("acme", "d", fsdp2(8), cluster="bare", nodes="gpu[2-3]")  # nodes of other clusters
    registry.put_cluster("acme", "other", nodes=8, gpus_per_node=4)
    registry.register_job("acme", "e", fsdp2(8), cluster="other", nodes="gpu[2-3]")  # ... are other nodes


def test_occupancy_lists_every_topology_node(registry: Registry) -> None:
    from tests.registry.test_cluster_topology import racks, tp8

    registry.put_cluster("acme", "east", nodes=4, gpus_per_node=4, topology=racks())
    registry.register_job("acme", "j", tp8(8), cluster="east", nodes="gpu[3-4]")
    occupancy = registry.occupancy("acme", "east")
    assert occupancy["occupancy"] == [
        {"node": "gpu1", "job": None},
        {"node": "gpu2", "job": None},
        {"node": "gpu3", "job": "j"},
        {"node": "gpu4", "job": "j"},
    ]
    assert (occupancy["gpus"], occupancy["held_gpus"], occupancy["free_gpus"]) == (16, 8, 8)


def test_a_replica_plans_again_when_another_reshaped_or_recreated_the_cluster(registry: Registry) -> None:
    """Registrations plan on the cluster's shape as their process last saw it; the write checks it is still the
    shape of the row it locks, so a cluster another replica reshaped, or deleted and created again, is read anew."""
    other = Registry(registry.engine)  # another replica: its own memory, the same database
    registry.put_cluster("acme", "c", nodes=4, gpus_per_node=8)
    registry.register_job("acme", "first", fsdp2(8), cluster="c")  # this replica now knows c as 4 × 8
    registry.delete_job("acme", "first")
    other.delete_cluster("acme", "c")
    other.put_cluster("acme", "c", nodes=4, gpus_per_node=4)  # same name, version 1 again, 16 GPUs
    with pytest.raises(InvalidTopologyError) as small:
        registry.register_job("acme", "big", fsdp2(32), cluster="c")
    assert "cluster_too_small" in {p["code"] for p in small.value.problems}
    assert registry.register_job("acme", "fits", fsdp2(16), cluster="c").job.gpus == 16
    other.put_cluster("acme", "c", nodes=8, gpus_per_node=4)  # reshaped (grown) while "fits" runs
    assert registry.register_job("acme", "more", fsdp2(16), cluster="c").created
    with pytest.raises(CapacityError):
        registry.register_job("acme", "over", fsdp2(8), cluster="c")
    other.delete_job("acme", "fits")
    other.delete_job("acme", "more")
    other.delete_cluster("acme", "c")
    with pytest.raises(NotFoundError):
        registry.register_job("acme", "gone", fsdp2(8), cluster="c")
