"""What the registry hands back: plain frozen records, detached from the database session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from meshctx.job_states import JobState


@dataclass(frozen=True)
class ClusterRecord:
    tenant: str
    name: str
    nodes: int
    gpus_per_node: int
    nvlink_domain: int | None
    created_at: datetime
    updated_at: datetime
    topology: dict[str, Any] | None = None
    #: False in listings that leave topologies out (``topology`` is then absent from ``to_dict()``).
    with_topology: bool = True

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "nodes": self.nodes,
            "gpus_per_node": self.gpus_per_node,
            "nvlink_domain": self.nvlink_domain,
            "gpus": self.gpus,
            "topology": self.topology,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
        if not self.with_topology:
            del out["topology"]
        return out


@dataclass(frozen=True)
class JobRecord:
    tenant: str
    job_id: str
    cluster: str | None
    labels: dict[str, str]
    request: dict[str, Any]
    plan: dict[str, Any]
    fingerprint: str
    gpus: int
    state: JobState
    version: int
    etag: str
    created_at: datetime
    updated_at: datetime
    placement: dict[str, Any] | None = None
    nodes: list[str] | None = None
    lease_seconds: int = 0
    lease_expires_at: datetime | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "cluster": self.cluster,
            "labels": self.labels,
            "request": self.request,
            "plan": self.plan,
            "fingerprint": self.fingerprint,
            "gpus": self.gpus,
            "placement": self.placement,
            "nodes": self.nodes,
            "state": self.state.value,
            "lease_seconds": self.lease_seconds,
            "lease_expires_at": self.lease_expires_at.isoformat() if self.lease_expires_at is not None else None,
            "version": self.version,
            "etag": self.etag,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class Registration:
    """The outcome of a PUT: ``created`` is False for an idempotent repeat or an update (HTTP 200 vs 201)."""

    job: JobRecord
    created: bool
    changed: bool


@dataclass(frozen=True)
class AttestationRecord:
    job_id: str
    expected: str
    reported: str
    matched: bool
    created_at: datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "expected": self.expected,
            "reported": self.reported,
            "matched": self.matched,
            "created_at": self.created_at.isoformat(),
        }


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_cursor`` back to get the next one (``None``: this was the last)."""

    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None
