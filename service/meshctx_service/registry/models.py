"""The registry's tables. Every row belongs to a tenant; names are unique per tenant, never globally, so one
tenant cannot even learn that another's job id exists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshctx.job_states import NAMES as STATE_NAMES

NAME_LENGTH = 128


class Base(DeclarativeBase):
    pass


class Cluster(Base):
    __tablename__ = "clusters"
    __table_args__ = (
        UniqueConstraint("tenant", "name", name="uq_clusters_tenant_name"),
        CheckConstraint("nodes >= 1", name="ck_clusters_nodes"),
        CheckConstraint("gpus_per_node >= 1", name="ck_clusters_gpus_per_node"),
        CheckConstraint("nvlink_domain IS NULL OR nvlink_domain >= 1", name="ck_clusters_nvlink_domain"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    nodes: Mapped[int] = mapped_column(Integer)
    gpus_per_node: Mapped[int] = mapped_column(Integer)
    nvlink_domain: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The active jobs on this cluster and the GPUs they hold, kept in the same transaction as every change to
    # them (under this row's lock), so admitting a job reads one row instead of summing every active job.
    active_jobs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    held_gpus: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The meshctx topology JSON (``Topology.to_dict()``) of its nodes, when registered: jobs that name their
    # allocation are placed on it.
    topology: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # No active job's lease on this cluster runs out before this (a lower bound, kept under this row's lock):
    # writes look for expired leases only once it has passed (see leases.py). None: no active job has a lease.
    lease_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant", "job_id", name="uq_jobs_tenant_job_id"),
        CheckConstraint(f"state IN ({', '.join(map(repr, STATE_NAMES))})", name="ck_jobs_state"),
        CheckConstraint("gpus >= 1", name="ck_jobs_gpus"),
        Index("ix_jobs_tenant_cluster_state", "tenant", "cluster_name", "state", "gpus"),  # covers the capacity sum
        Index("ix_jobs_tenant_state", "tenant", "state"),
        # Finds a cluster's expired leases, and its earliest lease, by a range scan (ended jobs have none).
        Index("ix_jobs_lease", "tenant", "cluster_name", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(NAME_LENGTH))
    job_id: Mapped[str] = mapped_column(String(NAME_LENGTH))
    # No foreign key: finished jobs keep the name of a cluster deleted later; live references are guarded by
    # the cluster row lock taken in every write that admits a job (see transactions.py).
    cluster_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH), nullable=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(80))
    gpus: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    body_digest: Mapped[str] = mapped_column(String(64))
    # The placement of the job's allocation on its cluster's topology (order + crossings), when it named one.
    placement: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The hosts the job was allocated (``nodes`` of the registration), held while it is active (``JobNode``).
    nodes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # 0: no lease. Otherwise an active job whose ``lease_expires_at`` passed is lost; an ended one has none.
    lease_seconds: Mapped[int] = mapped_column(Integer, server_default="0")
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Attestation(Base):
    __tablename__ = "attestations"
    __table_args__ = (Index("ix_attestations_job", "job_pk", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    expected: Mapped[str] = mapped_column(String(80))
    reported: Mapped[str] = mapped_column(String(80))
    matched: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JobNode(Base):
    """A host an active job holds on its cluster: one row per host, unique per cluster, so two active jobs can
    never hold the same node. Rows go when the job ends (or is deleted)."""

    __tablename__ = "job_nodes"
    __table_args__ = (
        UniqueConstraint("tenant", "cluster_name", "host", name="uq_job_nodes_host"),
        Index("ix_job_nodes_job", "job_pk"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(NAME_LENGTH))
    cluster_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    host: Mapped[str] = mapped_column(String(253))
    job_pk: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))


# The Core tables, for statements written without the ORM (``__table__`` is typed as any ``FromClause``).
CLUSTERS: Table = Base.metadata.tables[Cluster.__tablename__]
JOBS: Table = Base.metadata.tables[Job.__tablename__]
ATTESTATIONS: Table = Base.metadata.tables[Attestation.__tablename__]
NODES: Table = Base.metadata.tables[JobNode.__tablename__]
