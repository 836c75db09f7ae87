"""Leases: a job holds its GPUs and nodes while it is heard from; one not heard from in time is ``lost``.

A job registered with ``lease_seconds`` > 0 has ``lease_expires_at``; a heartbeat, an attestation or a repeated
registration moves it forward. An active job whose lease has passed is lost: final, holding nothing.

Expiry is lazy and per cluster, never a scan per request. Each cluster row keeps ``lease_due``, a lower bound on
the earliest lease of its active jobs (a new lease lowers it under the cluster's lock; renewals only move leases
later, so the bound stays true without touching the cluster). A write that locks the cluster anyway compares
``lease_due`` with the clock; only once it has passed does it run ``expire_due``: one indexed UPDATE of the jobs
whose lease passed (``ix_jobs_lease``), then the cluster's counters and ``lease_due`` again.

Exact under concurrent replicas (PostgreSQL): ``expire_due`` runs under the cluster's row lock, so two replicas
expire one after the other and the second finds nothing (no double free). A heartbeat is one conditional UPDATE
(``lease_expires_at >= now`` on an active job): it and an expiry both lock the job's row, and PostgreSQL re-checks
the loser's WHERE against the winner's committed row, so either the renewal lands first (the job lives on) or the
expiry does (the heartbeat matches nothing and answers ``job_ended``): a lost job never comes back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, select, update
from sqlalchemy.orm import Session

from meshctx.job_states import ACTIVE, JobState

from .models import CLUSTERS, JOBS, NODES, Cluster
from .rows import utc
from .transactions import lock_cluster

ACTIVE_NAMES = tuple(s.value for s in ACTIVE)
#: The longest lease a job may ask for (30 days).
MAX_LEASE_S = 30 * 24 * 3600


def expires(now: datetime, lease_seconds: int) -> datetime | None:
    return now + timedelta(seconds=lease_seconds) if lease_seconds else None


def on_cluster(tenant: str, cluster: str | None) -> ColumnElement[bool]:
    where = JOBS.c.cluster_name == cluster if cluster is not None else JOBS.c.cluster_name.is_(None)
    return (JOBS.c.tenant == tenant) & where


def expire_due(
    connection: Connection, tenant: str, cluster: str | None, now: datetime, *, keep: datetime | None = None
) -> list[Any]:
    """Mark lost every active job of ``cluster`` (``None``: the tenant's jobs on no cluster) whose lease passed
    before ``now``, free their GPUs and nodes, and set the cluster's ``lease_due`` to its earliest remaining lease
    (or ``keep``, a lease this transaction is adding, if earlier). The caller holds the cluster's lock.
    Returns the lost jobs' ``(id, gpus)``."""
    lost = list(
        connection.execute(
            update(JOBS)
            .where(on_cluster(tenant, cluster), JOBS.c.state.in_(ACTIVE_NAMES), JOBS.c.lease_expires_at < now)
            .values(state=JobState.LOST.value, version=JOBS.c.version + 1, updated_at=now, lease_expires_at=None)
            .returning(JOBS.c.id, JOBS.c.gpus)
        ).all()
    )
    ids = [row.id for row in lost]
    for start in range(0, len(ids), 500):
        connection.execute(delete(NODES).where(NODES.c.job_pk.in_(ids[start : start + 500])))
    if cluster is None:
        return lost
    earliest = connection.execute(
        select(func.min(JOBS.c.lease_expires_at)).where(on_cluster(tenant, cluster))
    ).scalar_one_or_none()
    if isinstance(earliest, str):  # SQLite's min() hands the stored text back
        earliest = datetime.fromisoformat(earliest)
    if earliest is not None and earliest.tzinfo is None:
        earliest = earliest.replace(tzinfo=now.tzinfo)
    due = min((d for d in (earliest, keep) if d is not None), default=None)
    connection.execute(
        update(CLUSTERS)
        .where(CLUSTERS.c.tenant == tenant, CLUSTERS.c.name == cluster)
        .values(
            active_jobs=CLUSTERS.c.active_jobs - len(lost),
            held_gpus=CLUSTERS.c.held_gpus - sum(row.gpus for row in lost),
            lease_due=due,
        )
    )
    return lost


def expired(lease_expires_at: datetime | None, now: datetime) -> bool:
    return lease_expires_at is not None and utc(lease_expires_at) < now


def settled_cluster(session: Session, tenant: str, name: str, now: datetime) -> Cluster | None:
    """The cluster's ORM row, locked, with its expired leases settled (so its counters hold only live jobs)."""
    row = lock_cluster(session, tenant, name)
    if row is not None and row.lease_due is not None and utc(row.lease_due) <= now:
        expire_due(session.connection(), tenant, name, now)
        session.refresh(row)
    return row


def lock_and_expire(connection: Connection, tenant: str, cluster: str | None, now: datetime) -> None:
    """Lock ``cluster``'s row and settle its expired leases if its ``lease_due`` has passed."""
    if cluster is None:
        expire_due(connection, tenant, None, now)
        return
    due = connection.execute(
        select(CLUSTERS.c.lease_due).where(CLUSTERS.c.tenant == tenant, CLUSTERS.c.name == cluster).with_for_update()
    ).scalar_one_or_none()
    if due is not None and utc(due) <= now:
        expire_due(connection, tenant, cluster, now)
