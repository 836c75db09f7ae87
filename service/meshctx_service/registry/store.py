"""``Registry``: every registry operation, each one transaction, each scoped to one tenant.

A row of another tenant is never read, changed or even acknowledged: every query filters on the tenant,
and a miss is ``NotFoundError`` whether the name is free or taken by someone else. Writes go through
``run_write`` (see ``transactions.py`` for the concurrency argument); reads use plain snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from meshctx.job_states import NAMES, TRANSITIONS, JobState
from meshctx.plan.request import TopologyRequest

from . import names
from .capacity import check_free, fit
from .errors import (
    ClusterInUseError,
    FingerprintMismatchError,
    IllegalTransitionError,
    InvalidInputError,
    JobExistsError,
    JobNotUpdatableError,
    NotFoundError,
    PreconditionFailedError,
)
from .etags import body_digest, etag_matches, make_etag
from .models import Attestation, Cluster, Job
from .paging import DEFAULT_LIMIT, check_limit, decode_cursor, encode_cursor
from .placing import MAX_NODES, checked_topology, expanded_nodes, placement_summary
from .records import AttestationRecord, ClusterRecord, JobRecord, Page, Registration
from .transactions import lock_cluster, read_session, run_write

Row = TypeVar("Row", Cluster, Job)
Item = TypeVar("Item", ClusterRecord, JobRecord)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _cluster_record(row: Cluster) -> ClusterRecord:
    return ClusterRecord(
        tenant=row.tenant,
        name=row.name,
        nodes=row.nodes,
        gpus_per_node=row.gpus_per_node,
        nvlink_domain=row.nvlink_domain,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        topology=dict(row.topology) if row.topology is not None else None,
    )


def _job_record(row: Job) -> JobRecord:
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
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        placement=dict(row.placement) if row.placement is not None else None,
    )


def _not_a_state(state: object) -> tuple[str, str]:
    return "state", f"{state!r} is not a state; use one of {', '.join(NAMES)}."


def _hold(cluster: Cluster | None, gpus: int, sign: int) -> None:
    """Count a job in (``sign`` 1) or out (-1) of its locked cluster row's active jobs and held GPUs."""
    if cluster is not None:
        cluster.active_jobs += sign
        cluster.held_gpus += sign * gpus


def _holder(row: Job) -> str | None:
    """The cluster whose GPUs ``row`` holds: its cluster while it is active, else none."""
    return row.cluster_name if JobState(row.state).active else None


@dataclass(frozen=True)
class _Attested:
    record: AttestationRecord
    mismatch: FingerprintMismatchError | None


class Registry:
    """The registry over one engine (see ``engine.make_engine``); safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- clusters -------------------------------------------------------------------------------------------

    def put_cluster(
        self,
        tenant: str,
        name: str,
        *,
        nodes: int,
        gpus_per_node: int,
        nvlink_domain: int | None = None,
        topology: Mapping[str, Any] | None = None,
        max_nodes: int = MAX_NODES,
    ) -> tuple[ClusterRecord, bool]:
        """Create or replace a cluster; ``(record, created)``. Reshaping one that active jobs use is refused.

        ``topology`` (meshctx topology JSON) must list ``nodes`` nodes of ``gpus_per_node`` GPUs each; a PUT
        without it removes a stored one (PUT replaces the whole cluster). Jobs already placed keep their
        placement."""
        errors = [names.name_error("tenant", tenant), names.name_error("name", name)]
        for field, value, optional in (
            ("nodes", nodes, False),
            ("gpus_per_node", gpus_per_node, False),
            ("nvlink_domain", nvlink_domain, True),
        ):
            if optional and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                errors.append((field, f"must be a positive integer, got {value!r}."))
        names.check(*errors)
        stored = (
            None
            if topology is None
            else checked_topology(topology, nodes=nodes, gpus_per_node=gpus_per_node, max_nodes=max_nodes)
        )

        def work(session: Session) -> tuple[ClusterRecord, bool]:
            now = _now()
            row = lock_cluster(session, tenant, name)
            if row is None:
                row = Cluster(
                    tenant=tenant,
                    name=name,
                    nodes=nodes,
                    gpus_per_node=gpus_per_node,
                    nvlink_domain=nvlink_domain,
                    topology=stored,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                return _cluster_record(row), True
            reshaped = (row.nodes, row.gpus_per_node, row.nvlink_domain) != (nodes, gpus_per_node, nvlink_domain)
            if reshaped:
                count, held = row.active_jobs, row.held_gpus
                if count and (
                    (row.gpus_per_node, row.nvlink_domain) != (gpus_per_node, nvlink_domain)
                    or held > nodes * gpus_per_node
                ):
                    raise ClusterInUseError(name, count, held, f"reshape to {nodes}×{gpus_per_node} GPUs")
            if reshaped or row.topology != stored:
                row.nodes, row.gpus_per_node, row.nvlink_domain = nodes, gpus_per_node, nvlink_domain
                row.topology = stored
                row.version += 1
                row.updated_at = now
            session.flush()
            return _cluster_record(row), False

        return run_write(self.engine, work)

    def get_cluster(self, tenant: str, name: str) -> ClusterRecord:
        names.check(names.name_error("name", name))
        with read_session(self.engine) as session:
            row = session.scalars(select(Cluster).where(Cluster.tenant == tenant, Cluster.name == name)).one_or_none()
            if row is None:
                raise NotFoundError("cluster", name)
            return _cluster_record(row)

    def list_clusters(
        self, tenant: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[ClusterRecord]:
        return self._page(select(Cluster).where(Cluster.tenant == tenant), Cluster.name, limit, cursor, _cluster_record)

    def delete_cluster(self, tenant: str, name: str) -> None:
        """Refused while active jobs are planned on it; finished jobs keep its name for the record."""
        names.check(names.name_error("name", name))

        def work(session: Session) -> None:
            row = lock_cluster(session, tenant, name)
            if row is None:
                raise NotFoundError("cluster", name)
            if row.active_jobs:
                raise ClusterInUseError(name, row.active_jobs, row.held_gpus, "delete")
            session.delete(row)

        run_write(self.engine, work)

    # -- jobs -----------------------------------------------------------------------------------------------

    def register_job(
        self,
        tenant: str,
        job_id: str,
        request: TopologyRequest,
        *,
        cluster: str | None = None,
        labels: Mapping[str, str] | None = None,
        if_match: str | None = None,
        nodes: str | Sequence[str] | None = None,
        max_nodes: int = MAX_NODES,
    ) -> Registration:
        """Idempotent PUT. The same body again returns the stored job unchanged; a different body replaces a
        registered job only with ``if_match`` equal to its current ETag. On a cluster, the cluster's shape
        must fit and its free GPUs must cover the job (``CapacityError`` otherwise).

        ``nodes`` (a hostlist expression or a list of hosts) is the job's allocation: it needs a cluster with a
        topology, where it is placed (``InvalidPlacementError`` listing every problem when it does not fit) and
        the placement is stored with the job."""
        labels = dict(labels or {})
        names.check(
            names.name_error("tenant", tenant),
            names.name_error("job_id", job_id),
            names.name_error("cluster", cluster) if cluster is not None else None,
            more=names.label_errors(labels),
        )
        hosts = None if nodes is None else expanded_nodes(nodes, max_nodes=max_nodes)
        if hosts is not None and cluster is None:
            raise InvalidInputError([("nodes", "an allocation is placed on a cluster's topology; name the cluster.")])
        body = {"request": request.to_dict(), "cluster": cluster, "labels": labels}
        digest = body_digest(body if hosts is None else {**body, "nodes": hosts})

        def work(session: Session) -> Registration:
            now = _now()
            row = session.scalars(
                select(Job).where(Job.tenant == tenant, Job.job_id == job_id).with_for_update()
            ).one_or_none()
            current = make_etag(row.version, row.body_digest) if row is not None else None
            if if_match is not None and not etag_matches(if_match, current):
                raise PreconditionFailedError("job", job_id, if_match, current)
            if row is not None and current is not None:
                if row.body_digest == digest:
                    return Registration(_job_record(row), created=False, changed=False)
                if if_match is None:
                    raise JobExistsError(job_id, current)
                if row.state != JobState.REGISTERED.value:
                    raise JobNotUpdatableError(job_id, row.state)
            before = _holder(row) if row is not None else None
            # Lock every cluster this write changes, in name order (two writers never wait on each other).
            changed = sorted({n for n in (before, cluster) if n is not None})
            locked = {name: lock_cluster(session, tenant, name) for name in changed}
            cluster_row = locked.get(cluster) if cluster is not None else None
            if cluster is not None and cluster_row is None:
                raise NotFoundError("cluster", cluster)
            fitted = fit(request, cluster_row)
            placement = None
            if hosts is not None and cluster_row is not None:
                if cluster_row.topology is None:
                    raise InvalidInputError(
                        [
                            (
                                "nodes",
                                f"cluster {cluster!r} has no topology to place the allocation on; register one "
                                f"(PUT /v1/clusters/{cluster} with topology, or meshctx clusters put --topology) "
                                "or leave nodes out.",
                            )
                        ]
                    )
                assert fitted.mesh is not None  # fit raises unless the request planned
                placement = placement_summary(fitted.mesh, cluster_row.topology, hosts)
            if cluster_row is not None:
                held = cluster_row.held_gpus - (row.gpus if row is not None and before == cluster else 0)
                check_free(cluster_row, held, fitted.gpus)
            if row is not None and before is not None:
                _hold(locked.get(before), row.gpus, -1)
            _hold(cluster_row, fitted.gpus, 1)
            values = {
                "cluster_name": cluster,
                "labels": labels,
                "request": fitted.request,
                "plan": fitted.plan,
                "fingerprint": fitted.fingerprint,
                "gpus": fitted.gpus,
                "body_digest": digest,
                "placement": placement,
                "updated_at": now,
            }
            if row is None:
                row = Job(
                    tenant=tenant, job_id=job_id, state=JobState.REGISTERED.value, version=1, created_at=now, **values
                )
                session.add(row)
                session.flush()
                return Registration(_job_record(row), created=True, changed=True)
            for key, value in values.items():
                setattr(row, key, value)
            row.version += 1
            session.flush()
            return Registration(_job_record(row), created=False, changed=True)

        return run_write(self.engine, work)

    def get_job(self, tenant: str, job_id: str) -> JobRecord:
        with read_session(self.engine) as session:
            return _job_record(self._job(session, tenant, job_id))

    def list_jobs(
        self,
        tenant: str,
        *,
        cluster: str | None = None,
        state: JobState | str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[JobRecord]:
        """Jobs ordered by job id; every filter must hold (labels: each key=value pair)."""
        errors = names.label_errors(labels or {}, "label")
        if state is not None and str(state) not in NAMES:
            errors.append(_not_a_state(state))
        if cluster is not None and not names.is_name(cluster):
            errors.append(("cluster", f"{cluster!r} is not a valid name; use {names.NAME_RULE}."))
        names.check(more=errors)
        query = select(Job).where(Job.tenant == tenant)
        if cluster is not None:
            query = query.where(Job.cluster_name == cluster)
        if state is not None:
            query = query.where(Job.state == str(state))
        for key, value in (labels or {}).items():
            query = query.where(Job.labels[key].as_string() == value)
        return self._page(query, Job.job_id, limit, cursor, _job_record)

    def _page(
        self,
        query: Select[Row],
        key: InstrumentedAttribute[str],
        limit: int,
        cursor: str | None,
        record: Callable[[Row], Item],
    ) -> Page[Item]:
        """One page of ``query`` in ``key`` order, after the cursor's key (keyset pagination); one row more than
        the page is read to know whether another page follows."""
        limit, after = check_limit(limit), decode_cursor(cursor)
        if after is not None:
            query = query.where(key > after)
        with read_session(self.engine) as session:
            rows = list(session.scalars(query.order_by(key).limit(limit + 1)))
        last = getattr(rows[limit - 1], key.key) if len(rows) > limit else None
        return Page([record(row) for row in rows[:limit]], encode_cursor(last) if last is not None else None)

    def delete_job(self, tenant: str, job_id: str, *, if_match: str | None = None) -> None:
        """Removes the job and its attestations, freeing its GPUs."""

        def work(session: Session) -> None:
            row = self._job(session, tenant, job_id, lock=True)
            self._check_if_match(row, if_match)
            holder = _holder(row)
            if holder is not None:
                _hold(lock_cluster(session, tenant, holder), row.gpus, -1)
            session.delete(row)

        run_write(self.engine, work)

    def set_state(self, tenant: str, job_id: str, state: JobState | str, *, if_match: str | None = None) -> JobRecord:
        """registered → running|failed, running → finished|failed. Repeating the current state is a no-op."""
        try:
            target = JobState(state)
        except ValueError:
            raise InvalidInputError([_not_a_state(state)]) from None

        def work(session: Session) -> JobRecord:
            row = self._job(session, tenant, job_id, lock=True)
            self._check_if_match(row, if_match)
            current = JobState(row.state)
            if target != current:
                allowed = TRANSITIONS[current]
                if target not in allowed:
                    raise IllegalTransitionError(job_id, current.value, target.value, [s.value for s in allowed])
                holder = _holder(row)
                if holder is not None and not target.active:
                    _hold(lock_cluster(session, tenant, holder), row.gpus, -1)
                row.state, row.version, row.updated_at = target.value, row.version + 1, _now()
                session.flush()
            return _job_record(row)

        return run_write(self.engine, work)

    def attest(self, tenant: str, job_id: str, fingerprint: str) -> AttestationRecord:
        """Record the fingerprint a job built. A match marks a registered job running; a mismatch is recorded,
        then raised as ``FingerprintMismatchError`` with both fingerprints."""
        names.check(names.name_error("job_id", job_id), names.fingerprint_error(fingerprint))

        def work(session: Session) -> _Attested:
            row = self._job(session, tenant, job_id, lock=True)
            current = JobState(row.state)
            if not current.active:
                raise IllegalTransitionError(job_id, current.value, JobState.RUNNING.value, [])
            now = _now()
            matched = fingerprint == row.fingerprint
            session.add(
                Attestation(
                    job_pk=row.id, expected=row.fingerprint, reported=fingerprint, matched=matched, created_at=now
                )
            )
            if matched and current == JobState.REGISTERED:
                row.state, row.version, row.updated_at = JobState.RUNNING.value, row.version + 1, now
            session.flush()
            record = AttestationRecord(job_id, row.fingerprint, fingerprint, matched, now)
            mismatch = None if matched else FingerprintMismatchError(job_id, row.fingerprint, fingerprint)
            return _Attested(record, mismatch)

        outcome = run_write(self.engine, work)
        if outcome.mismatch is not None:
            raise outcome.mismatch
        return outcome.record

    def attestations(self, tenant: str, job_id: str) -> list[AttestationRecord]:
        with read_session(self.engine) as session:
            row = self._job(session, tenant, job_id)
            found = session.scalars(select(Attestation).where(Attestation.job_pk == row.id).order_by(Attestation.id))
            return [AttestationRecord(job_id, a.expected, a.reported, a.matched, _utc(a.created_at)) for a in found]

    # -- helpers --------------------------------------------------------------------------------------------

    @staticmethod
    def _job(session: Session, tenant: str, job_id: str, *, lock: bool = False) -> Job:
        """The tenant's job (row-locked for writes: lock order is always job, then cluster)."""
        names.check(names.name_error("job_id", job_id))  # no other text can name a job, so none reaches SQL
        query = select(Job).where(Job.tenant == tenant, Job.job_id == job_id)
        row = session.scalars(query.with_for_update() if lock else query).one_or_none()
        if row is None:
            raise NotFoundError("job", job_id)
        return row

    @staticmethod
    def _check_if_match(row: Job, if_match: str | None) -> None:
        current = make_etag(row.version, row.body_digest)
        if if_match is not None and not etag_matches(if_match, current):
            raise PreconditionFailedError("job", row.job_id, if_match, current)
