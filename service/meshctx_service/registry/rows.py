"""Rows to records: what the registry reads, as the plain values it hands back (timestamps in UTC)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from meshctx.job_states import JobState

from .etags import make_etag
from .records import ClusterRecord, JobRecord

if TYPE_CHECKING:
    from .models import Cluster


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def cluster_record(row: Cluster, *, topology: bool = True) -> ClusterRecord:
    return ClusterRecord(
        tenant=row.tenant,
        name=row.name,
        nodes=row.nodes,
        gpus_per_node=row.gpus_per_node,
        nvlink_domain=row.nvlink_domain,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        topology=dict(row.topology) if topology and row.topology is not None else None,
        with_topology=topology,
    )


def job_record(row: Any) -> JobRecord:
    """From an ORM ``Job``, a Core row of ``jobs`` or a namespace of the same names."""
    return JobRecord(
        tenant=row.tenant,
        job_id=row.job_id,
        cluster=row.cluster_name,
        labels=dict(row.labels),
        request=dict(row.request),
        plan=dict(row.plan),
        fingerprint=row.fingerprint,
        gpus=row.gpus,
        state=JobState(row.state),
        version=row.version,
        etag=make_etag(row.version, row.body_digest),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        placement=dict(row.placement) if row.placement is not None else None,
        nodes=list(row.nodes) if row.nodes is not None else None,
        lease_seconds=row.lease_seconds,
        lease_expires_at=utc(row.lease_expires_at) if row.lease_expires_at is not None else None,
    )
