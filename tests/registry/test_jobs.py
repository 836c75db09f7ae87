"""Jobs through the repository layer on SQLite and PostgreSQL: registration, idempotency, ETags, listing,
state changes, attestations and tenant isolation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from meshctx.config import ParallelismSizes
from meshctx.plan import ClusterShape, validate_topology
from meshctx.plan.request import TopologyRequest
from meshctx_service.registry import (
    CapacityError,
    FingerprintMismatchError,
    IllegalTransitionError,
    InvalidInputError,
    InvalidTopologyError,
    JobExistsError,
    JobNotUpdatableError,
    JobState,
    NotFoundError,
    PreconditionFailedError,
    Registry,
)
from tests.registry.registrar import fsdp2


def test_register_stores_request_plan_and_fingerprint(registry: Registry) -> None:
    request = fsdp2(16, tp=4)
    outcome = registry.register_job("acme", "train-1", request, labels={"team": "nlp"})
    expected = validate_topology("fsdp2", ParallelismSizes(tp_size=4), world_size=16).plan
    assert expected is not None
    assert outcome.created and outcome.changed
    job = registry.get_job("acme", "train-1")
    assert job.request == request.to_dict()
    assert job.plan == expected.to_dict()
    assert job.fingerprint == expected.fingerprint() == job.plan["fingerprint"]
    assert (job.gpus, job.state, job.version, job.labels, job.cluster) == (
        16,
        JobState.REGISTERED,
        1,
        {"team": "nlp"},
        None,
    )
    assert job.created_at.tzinfo is not None and job.created_at == job.updated_at


def test_same_put_twice_is_idempotent(registry: Registry) -> None:
    first = registry.register_job("acme", "j", fsdp2(8), labels={"a": "1"})
    again = registry.register_job("acme", "j", fsdp2(8), labels={"a": "1"})
    assert (again.created, again.changed) == (False, False)
    assert replace(again.job, lease_expires_at=None) == replace(first.job, lease_expires_at=None)
    first_lease, renewed = first.job.lease_expires_at, again.job.lease_expires_at
    assert first_lease is not None and renewed is not None and renewed >= first_lease  # a repeat renews the lease
    assert len(registry.list_jobs("acme").items) == 1


def test_different_body_needs_the_current_etag(registry: Registry) -> None:
    first = registry.register_job("acme", "j", fsdp2(8)).job
    with pytest.raises(JobExistsError) as exists:
        registry.register_job("acme", "j", fsdp2(8, tp=2))
    assert exists.value.etag == first.etag and first.etag in str(exists.value)
    with pytest.raises(PreconditionFailedError) as stale:
        registry.register_job("acme", "j", fsdp2(8, tp=2), if_match='"7-0000000000000000"')
    assert stale.value.current == first.etag
    updated = registry.register_job("acme", "j", fsdp2(8, tp=2), if_match=first.etag)
    assert (updated.created, updated.changed, updated.job.version) == (False, True, 2)
    assert updated.job.etag != first.etag and updated.job.plan["sizes"]["tp"] == 2
    with pytest.raises(PreconditionFailedError):  # the old ETag is stale now: no lost update
        registry.register_job("acme", "j", fsdp2(8, tp=4), if_match=first.etag)
    assert registry.get_job("acme", "j").plan["sizes"]["tp"] == 2


def test_if_match_on_a_missing_job_fails(registry: Registry) -> None:
    with pytest.raises(PreconditionFailedError) as err:
        registry.register_job("acme", "nope", fsdp2(8), if_match="*")
    assert err.value.current is None
    with pytest.raises(NotFoundError):
        registry.get_job("acme", "nope")


def test_running_job_cannot_be_replaced(registry: Registry) -> None:
    job = registry.register_job("acme", "j", fsdp2(8)).job
    running = registry.set_state("acme", "j", "running")
    with pytest.raises(JobNotUpdatableError):
        registry.register_job("acme", "j", fsdp2(8, tp=2), if_match=running.etag)
    assert job.etag != running.etag


def test_invalid_topology_is_rejected_with_every_problem_and_nothing_stored(registry: Registry) -> None:
    bad = TopologyRequest(strategy="megatron_fsdp", sizes=ParallelismSizes(tp_size=3, pp_size=2), world_size=8)
    with pytest.raises(InvalidTopologyError) as err:
        registry.register_job("acme", "bad", bad)
    codes = {p["code"] for p in err.value.problems}
    assert {"strategy_unsupported_axis", "world_size_not_divisible"} <= codes
    assert all(p["message"] and p["hint"] for p in err.value.problems)
    assert err.value.extras()["problems"] == err.value.problems
    with pytest.raises(NotFoundError):
        registry.get_job("acme", "bad")


def test_elastic_range_is_not_registrable(registry: Registry) -> None:
    elastic = TopologyRequest(strategy="fsdp2", nnodes="1:4", nproc_per_node=8)
    with pytest.raises(InvalidTopologyError) as err:
        registry.register_job("acme", "elastic", elastic)
    assert [p["code"] for p in err.value.problems] == ["elastic_range_not_registrable"]


def test_job_is_checked_against_the_cluster_shape(registry: Registry) -> None:
    registry.put_cluster("acme", "small", nodes=2, gpus_per_node=4, nvlink_domain=4)
    too_big = TopologyRequest(
        strategy="fsdp2", sizes=ParallelismSizes(tp_size=8), nnodes=2, nproc_per_node=8,
        cluster=ClusterShape(gpus_per_node=8),
    )  # fmt: skip
    with pytest.raises(InvalidTopologyError) as err:
        registry.register_job("acme", "big", too_big, cluster="small")
    codes = [p["code"] for p in err.value.problems]
    assert {"cluster_shape_mismatch", "nproc_exceeds_gpus_per_node", "cluster_too_small"} <= set(codes)
    too_small = next(p for p in err.value.problems if p["code"] == "cluster_too_small")
    assert "16" in str(too_small["message"]) and "8" in str(too_small["message"])
    # A fitting job gets the registered shape in its plan (tp=8 > 4 GPUs per node draws the planner's warning).
    fits = registry.register_job("acme", "ok", fsdp2(8, tp=2), cluster="small").job
    assert fits.plan["cluster"]["gpus_per_node"] == 4 and fits.plan["cluster"]["nvlink_domain"] == 4
    assert fits.request == fsdp2(8, tp=2).to_dict()


def test_unknown_cluster_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match="cluster"):
        registry.register_job("acme", "j", fsdp2(8), cluster="ghost")


def test_capacity_counts_only_active_jobs(registry: Registry) -> None:
    registry.put_cluster("acme", "pool", nodes=2, gpus_per_node=8)
    registry.register_job("acme", "a", fsdp2(8), cluster="pool")
    registry.register_job("acme", "b", fsdp2(4), cluster="pool")
    with pytest.raises(CapacityError) as err:
        registry.register_job("acme", "c", fsdp2(8), cluster="pool")
    assert (err.value.capacity, err.value.held, err.value.requested, err.value.available) == (16, 12, 8, 4)
    assert "16 GPUs" in str(err.value) and "hold 12" in str(err.value) and "at most 4" in str(err.value)
    with pytest.raises(NotFoundError):
        registry.get_job("acme", "c")
    registry.set_state("acme", "a", "running")
    registry.set_state("acme", "a", "finished")
    assert registry.register_job("acme", "c", fsdp2(8), cluster="pool").created
    # Growing an existing job on the same cluster counts its own GPUs once.
    b = registry.get_job("acme", "b")
    with pytest.raises(CapacityError) as grow:
        registry.register_job("acme", "b", fsdp2(16), cluster="pool", if_match=b.etag)
    assert (grow.value.held, grow.value.requested) == (8, 16)
    assert registry.register_job("acme", "b", fsdp2(8), cluster="pool", if_match=b.etag).changed


def test_state_machine(registry: Registry) -> None:
    registry.register_job("acme", "j", fsdp2(8))
    with pytest.raises(IllegalTransitionError) as err:
        registry.set_state("acme", "j", "finished")
    assert err.value.allowed == ["running", "failed", "lost"] and "registered" in str(err.value)
    assert registry.set_state("acme", "j", JobState.RUNNING).state is JobState.RUNNING
    assert registry.set_state("acme", "j", "running").version == 2  # repeating the state is a no-op
    done = registry.set_state("acme", "j", "failed")
    assert (done.state, done.version) == (JobState.FAILED, 3)
    with pytest.raises(IllegalTransitionError, match="final"):
        registry.set_state("acme", "j", "running")
    with pytest.raises(InvalidInputError) as bad:
        registry.set_state("acme", "j", "paused")
    assert bad.value.errors[0]["field"] == "state"
    registry.register_job("acme", "k", fsdp2(8))
    assert registry.set_state("acme", "k", "failed").state is JobState.FAILED  # a launch may die before running


def test_state_change_honours_if_match(registry: Registry) -> None:
    job = registry.register_job("acme", "j", fsdp2(8)).job
    registry.set_state("acme", "j", "running", if_match=job.etag)
    with pytest.raises(PreconditionFailedError):
        registry.set_state("acme", "j", "finished", if_match=job.etag)
    with pytest.raises(PreconditionFailedError):
        registry.delete_job("acme", "j", if_match=job.etag)


def test_attestation_match_marks_running_and_mismatch_is_recorded(registry: Registry) -> None:
    job = registry.register_job("acme", "j", fsdp2(16, tp=8)).job
    other = registry.register_job("acme", "other", fsdp2(16, tp=4)).job
    with pytest.raises(FingerprintMismatchError) as err:
        registry.attest("acme", "j", other.fingerprint)
    assert (err.value.expected, err.value.reported) == (job.fingerprint, other.fingerprint)
    assert registry.get_job("acme", "j").state is JobState.REGISTERED
    ok = registry.attest("acme", "j", job.fingerprint)
    assert ok.matched and registry.get_job("acme", "j").state is JobState.RUNNING
    assert registry.attest("acme", "j", job.fingerprint).matched  # a restarted rank may attest again
    history = registry.attestations("acme", "j")
    assert [(a.reported, a.matched) for a in history] == [
        (other.fingerprint, False),
        (job.fingerprint, True),
        (job.fingerprint, True),
    ]
    registry.set_state("acme", "j", "finished")
    with pytest.raises(IllegalTransitionError):
        registry.attest("acme", "j", job.fingerprint)
    with pytest.raises(InvalidInputError):
        registry.attest("acme", "j", "")


def test_list_filters_and_cursor_pagination(registry: Registry) -> None:
    registry.put_cluster("acme", "east", nodes=64, gpus_per_node=8)
    for i in range(25):
        registry.register_job(
            "acme", f"job-{i:02d}", fsdp2(8), cluster="east" if i % 2 else None,
            labels={"team": "nlp" if i % 3 == 0 else "vision", "n": str(i)},
        )  # fmt: skip
    registry.set_state("acme", "job-01", "running")
    registry.register_job("other", "job-99", fsdp2(8), labels={"team": "nlp"})

    seen, cursor, pages = [], None, 0
    while True:
        page = registry.list_jobs("acme", limit=7, cursor=cursor)
        seen += [j.job_id for j in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"job-{i:02d}" for i in range(25)] and pages == 4
    assert [j.job_id for j in registry.list_jobs("acme", cluster="east", state="running").items] == ["job-01"]
    nlp = registry.list_jobs("acme", labels={"team": "nlp"}).items
    assert [j.job_id for j in nlp] == [f"job-{i:02d}" for i in range(0, 25, 3)]
    both = registry.list_jobs("acme", cluster="east", labels={"team": "nlp", "n": "3"}).items
    assert [j.job_id for j in both] == ["job-03"]
    assert len(registry.list_jobs("acme", cluster="east").items) == 12
    with pytest.raises(InvalidInputError) as err:
        registry.list_jobs("acme", cursor="garbage!", limit=0, state="sleeping")
    assert {e["field"] for e in err.value.errors} == {"state"}  # filters first, then paging
    with pytest.raises(InvalidInputError, match="cursor"):
        registry.list_jobs("acme", cursor="garbage!")
    with pytest.raises(InvalidInputError, match="limit"):
        registry.list_jobs("acme", limit=0)


def test_delete_frees_capacity_and_removes_attestations(registry: Registry) -> None:
    registry.put_cluster("acme", "pool", nodes=1, gpus_per_node=8)
    job = registry.register_job("acme", "a", fsdp2(8), cluster="pool").job
    registry.attest("acme", "a", job.fingerprint)
    registry.delete_job("acme", "a", if_match=registry.get_job("acme", "a").etag)
    with pytest.raises(NotFoundError):
        registry.attestations("acme", "a")
    assert registry.register_job("acme", "b", fsdp2(8), cluster="pool").created
    with pytest.raises(NotFoundError):
        registry.delete_job("acme", "a")


def test_tenants_cannot_see_or_touch_each_others_jobs(registry: Registry) -> None:
    job = registry.register_job("acme", "shared-name", fsdp2(8)).job
    registry.put_cluster("acme", "pool", nodes=1, gpus_per_node=8)
    for attempt in (
        lambda: registry.get_job("evil", "shared-name"),
        lambda: registry.set_state("evil", "shared-name", "running"),
        lambda: registry.delete_job("evil", "shared-name"),
        lambda: registry.attest("evil", "shared-name", job.fingerprint),
        lambda: registry.attestations("evil", "shared-name"),
        lambda: registry.register_job("evil", "j", fsdp2(8), cluster="pool"),
        lambda: registry.get_cluster("evil", "pool"),
        lambda: registry.delete_cluster("evil", "pool"),
    ):
        with pytest.raises(NotFoundError):
            attempt()
    assert registry.list_jobs("evil").items == [] and registry.list_clusters("evil").items == []
    # The same job id is free for another tenant and does not collide.
    theirs = registry.register_job("evil", "shared-name", fsdp2(4)).job
    assert theirs.gpus == 4 and registry.get_job("acme", "shared-name") == job
    assert registry.get_job("acme", "shared-name").state is JobState.REGISTERED


def test_bad_names_and_labels_are_all_reported(registry: Registry) -> None:
    with pytest.raises(InvalidInputError) as err:
        registry.register_job("acme", "bad id/", fsdp2(8), cluster="", labels={"ok": "1", "": "x", "k": 3})  # type: ignore[dict-item]
    fields = {e["field"] for e in err.value.errors}
    assert {"job_id", "cluster", "labels.", "labels.k"} <= fields


def test_too_many_processes_per_node_is_reported_once(registry: Registry) -> None:
    registry.put_cluster("acme", "quad", nodes=4, gpus_per_node=4, nvlink_domain=None)
    request = TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=8), nnodes=2, nproc_per_node=8)
    with pytest.raises(InvalidTopologyError) as err:
        registry.register_job("acme", "wide", request, cluster="quad")
    codes = [p["code"] for p in err.value.problems]
    assert codes.count("nproc_exceeds_gpus_per_node") == 1
    assert "'quad'" in next(p["message"] for p in err.value.problems if p["code"] == "nproc_exceeds_gpus_per_node")
