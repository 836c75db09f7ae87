"""``Registry``: every registry operation, each one transaction, each scoped to one tenant.

A row of another tenant is never read, changed or even acknowledged: every query filters on the tenant,
and a miss is ``NotFoundError`` whether the name is free or taken by someone else. Writes go through
``run_write``/``run_write_core`` (see ``transactions.py`` for the concurrency argument, ``leases.py`` for expiry);
reads use plain snapshots. The job writes are SQLAlchemy Core statements (no ORM unit of work on the hot path).

Beside it: a registration's planning and writes (``registering.py``), lease expiry (``leases.py``), a cluster's
occupancy (``occupancy.py``) and rows made records (``rows.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, delete, insert, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, defer

from meshctx.job_states import NAMES, TRANSITIONS, JobState
from meshctx.plan.request import TopologyRequest

from . import names
from .errors import (
    ClusterInUseError,
    FingerprintMismatchError,
    IllegalTransitionError,
    InvalidInputError,
    JobEndedError,
    NotFoundError,
    PreconditionFailedError,
    RegistryBusyError,
)
from .etags import body_digest, etag_matches, make_etag
from .leases import ACTIVE_NAMES, MAX_LEASE_S, expire_due, expired, expires, lock_and_expire, settled_cluster
from .models import ATTESTATIONS, CLUSTERS, JOBS, NODES, Attestation, Cluster, Job
from .occupancy import occupancy
from .paging import DEFAULT_LIMIT, check_limit, decode_cursor, encode_cursor
from .place import MAX_NODES, checked_topology, expanded_nodes
from .records import AttestationRecord, ClusterRecord, JobRecord, Page, Registration
from .registering import Ask, Registrations
from .rows import cluster_record, job_record, utc, utc_now
from .transactions import ATTEMPTS, read_session, run_write, run_write_core

#: ``MESHCTX_JOB_LEASE_S``'s default: a job not heard from for this long is lost.
DEFAULT_LEASE_S = 600

Row = TypeVar("Row", Cluster, Job)
Item = TypeVar("Item", ClusterRecord, JobRecord)


def _not_a_state(state: object) -> tuple[str, str]:
    return "state", f"{state!r} is not a state; use one of {', '.join(NAMES)}."


@dataclass(frozen=True)
class _Attested:
    record: AttestationRecord
    mismatch: FingerprintMismatchError | None


class Registry:
    """The registry over one engine (see ``engine.make_engine``); safe to share between threads."""

    def __init__(self, engine: Engine, *, default_lease_s: int = DEFAULT_LEASE_S) -> None:
        self.engine = engine
        self.default_lease_s = default_lease_s
        self._registrations = Registrations(engine)

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
            now = utc_now()
            row = settled_cluster(session, tenant, name, now)
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
                return cluster_record(row), True
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
            return cluster_record(row), False

        return run_write(self.engine, work)

    def get_cluster(self, tenant: str, name: str) -> ClusterRecord:
        names.check(names.name_error("name", name))
        with read_session(self.engine) as session:
            row = session.scalars(select(Cluster).where(Cluster.tenant == tenant, Cluster.name == name)).one_or_none()
            if row is None:
                raise NotFoundError("cluster", name)
            return cluster_record(row)

    def list_clusters(
        self, tenant: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None, topology: bool = False
    ) -> Page[ClusterRecord]:
        """Clusters by name; their topologies (up to ``MAX_NODES`` nodes each) only when asked for, else not even
        read from the database."""
        query = select(Cluster).where(Cluster.tenant == tenant)
        if not topology:
            query = query.options(defer(Cluster.topology))
        return self._page(query, Cluster.name, limit, cursor, lambda row: cluster_record(row, topology=topology))

    def delete_cluster(self, tenant: str, name: str) -> None:
        """Refused while active jobs are planned on it; finished jobs keep its name for the record."""
        names.check(names.name_error("name", name))

        def work(session: Session) -> None:
            row = settled_cluster(session, tenant, name, utc_now())
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
        lease_seconds: int | None = None,
    ) -> Registration:
        """Idempotent PUT. The same body again returns the stored job unchanged (renewing an active job's lease
        by its ``lease_seconds``); a different body replaces a registered job only with ``if_match`` equal to its
        current ETag. On a cluster, the cluster's shape must fit and its free GPUs must cover the job
        (``CapacityError`` otherwise).

        ``nodes`` (a hostlist expression or a list of hosts) is the job's allocation, held while it is active:
        ``NodesInUseError`` when active jobs on the cluster hold any of them. On a cluster with a topology it
        is placed (``InvalidPlacementError`` listing every problem when it does not fit) and the placement
        stored with the job. ``lease_seconds`` (default: the registry's ``default_lease_s``; 0: no lease):
        the job is lost unless renewed within it.

        Planning, the capacity pre-check and placement run before the write transaction, on a snapshot of the
        cluster; the write re-checks capacity under the cluster's lock and plans again only if the cluster
        changed shape in between."""
        labels = dict(labels or {})
        lease = self.default_lease_s if lease_seconds is None else lease_seconds
        lease_error = None
        if isinstance(lease, bool) or not isinstance(lease, int) or not 0 <= lease <= MAX_LEASE_S:
            lease_error = ("lease_seconds", f"must be an integer from 0 (no lease) to {MAX_LEASE_S}, got {lease!r}.")
        names.check(
            names.name_error("tenant", tenant),
            names.name_error("job_id", job_id),
            names.name_error("cluster", cluster) if cluster is not None else None,
            lease_error,
            more=names.label_errors(labels),
        )
        hosts = None if nodes is None else expanded_nodes(nodes, max_nodes=max_nodes)
        if hosts is not None and cluster is None:
            raise InvalidInputError([("nodes", "an allocation is held on a cluster; name the cluster.")])
        body = {"request": request.to_dict(), "cluster": cluster, "labels": labels}
        digest = body_digest(body if hosts is None else {**body, "nodes": hosts})
        ask = Ask(tenant, job_id, request, cluster, labels, if_match, hosts, lease, digest)
        return self._registrations.register(ask)

    def get_job(self, tenant: str, job_id: str) -> JobRecord:
        with read_session(self.engine) as session:
            row = self._job(session, tenant, job_id)
            if not (JobState(row.state).active and expired(row.lease_expires_at, utc_now())):
                return job_record(row)
        # Its lease ran out and no write has noticed yet: settle its cluster's leases, then answer.
        return run_write_core(self.engine, lambda c: job_record(self._locked_job(c, tenant, job_id, utc_now())))

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
        return self._page(query, Job.job_id, limit, cursor, job_record)

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
        """Removes the job and its attestations, freeing its GPUs and nodes."""

        def work(connection: Connection) -> None:
            row = self._locked_job(connection, tenant, job_id, utc_now())
            self._check_if_match(row, if_match)
            _release(connection, tenant, row)
            connection.execute(delete(NODES).where(NODES.c.job_pk == row.id))
            connection.execute(delete(ATTESTATIONS).where(ATTESTATIONS.c.job_pk == row.id))
            connection.execute(delete(JOBS).where(JOBS.c.id == row.id))

        run_write_core(self.engine, work)

    def set_state(self, tenant: str, job_id: str, state: JobState | str, *, if_match: str | None = None) -> JobRecord:
        """registered → running|failed|lost, running → finished|failed|lost. Repeating the current state is a
        no-op. An ended job holds nothing: its GPUs, nodes and lease go."""
        try:
            target = JobState(state)
        except ValueError:
            raise InvalidInputError([_not_a_state(state)]) from None

        def work(connection: Connection) -> JobRecord:
            now = utc_now()
            row = self._locked_job(connection, tenant, job_id, now)
            self._check_if_match(row, if_match)
            current = JobState(row.state)
            if target == current:
                return job_record(row)
            allowed = TRANSITIONS[current]
            if target not in allowed:
                raise IllegalTransitionError(job_id, current.value, target.value, [s.value for s in allowed])
            values: dict[str, Any] = {"state": target.value, "version": row.version + 1, "updated_at": now}
            if not target.active:
                _release(connection, tenant, row)
                connection.execute(delete(NODES).where(NODES.c.job_pk == row.id))
                values["lease_expires_at"] = None
            connection.execute(update(JOBS).where(JOBS.c.id == row.id).values(**values))
            return job_record(_replace(row, values))

        return run_write_core(self.engine, work)

    def heartbeat(self, tenant: str, job_id: str) -> JobRecord:
        """Renew an active job's lease (``lease_expires_at`` = now + its ``lease_seconds``); ``JobEndedError`` for
        an ended job, a lost one included. A job without a lease is answered as it is."""
        names.check(names.name_error("job_id", job_id))

        def work(connection: Connection) -> JobRecord:
            now = utc_now()
            key = (JOBS.c.tenant == tenant) & (JOBS.c.job_id == job_id)
            lease = connection.execute(select(JOBS.c.lease_seconds).where(key)).scalar_one_or_none()
            if lease:
                # One conditional UPDATE: renews only a live lease. Racing an expiry, PostgreSQL re-checks this
                # WHERE against the expiry's committed row (see leases.py): a lost job stays lost.
                renewed = connection.execute(
                    update(JOBS)
                    .where(
                        key,
                        JOBS.c.state.in_(ACTIVE_NAMES),
                        JOBS.c.lease_seconds == lease,
                        JOBS.c.lease_expires_at >= now,
                    )
                    .values(lease_expires_at=expires(now, lease))
                    .returning(*JOBS.c)
                ).first()
                if renewed is not None:
                    return job_record(renewed)
            row = self._locked_job(connection, tenant, job_id, now)  # settles an expired lease first
            if not JobState(row.state).active:
                raise JobEndedError(job_id, row.state)
            if row.lease_seconds and row.lease_seconds != lease:
                raise _Retry  # re-registered with another lease in between: renew again
            return job_record(row)  # no lease to renew

        for _ in range(ATTEMPTS):
            try:
                return run_write_core(self.engine, work)
            except _Retry:
                continue
        raise RegistryBusyError(f"Job {job_id!r} kept changing while its lease was renewed.")

    def attest(self, tenant: str, job_id: str, fingerprint: str) -> AttestationRecord:
        """Record the fingerprint a job built, renewing its lease. A match marks a registered job running; a
        mismatch is recorded, then raised as ``FingerprintMismatchError`` with both fingerprints. An ended job
        (a lost one too) is ``IllegalTransitionError``."""
        names.check(names.name_error("job_id", job_id), names.fingerprint_error(fingerprint))

        def work(connection: Connection) -> _Attested:
            now = utc_now()
            row = self._locked_job(connection, tenant, job_id, now)
            current = JobState(row.state)
            if not current.active:
                raise IllegalTransitionError(job_id, current.value, JobState.RUNNING.value, [])
            matched = fingerprint == row.fingerprint
            connection.execute(
                insert(ATTESTATIONS).values(
                    job_pk=row.id, expected=row.fingerprint, reported=fingerprint, matched=matched, created_at=now
                )
            )
            values: dict[str, Any] = {"lease_expires_at": expires(now, row.lease_seconds)}
            if matched and current == JobState.REGISTERED:
                values |= {"state": JobState.RUNNING.value, "version": row.version + 1, "updated_at": now}
            connection.execute(update(JOBS).where(JOBS.c.id == row.id).values(**values))
            record = AttestationRecord(job_id, row.fingerprint, fingerprint, matched, now)
            mismatch = None if matched else FingerprintMismatchError(job_id, row.fingerprint, fingerprint)
            return _Attested(record, mismatch)

        outcome = run_write_core(self.engine, work)
        if outcome.mismatch is not None:
            raise outcome.mismatch
        return outcome.record

    def attestations(self, tenant: str, job_id: str) -> list[AttestationRecord]:
        with read_session(self.engine) as session:
            row = self._job(session, tenant, job_id)
            found = session.scalars(select(Attestation).where(Attestation.job_pk == row.id).order_by(Attestation.id))
            return [AttestationRecord(job_id, a.expected, a.reported, a.matched, utc(a.created_at)) for a in found]

    def occupancy(self, tenant: str, name: str) -> dict[str, Any]:
        """Per node of the cluster, the active job holding it (or None), and its free GPUs (``occupancy.py``)."""
        return occupancy(self.engine, tenant, name)

    # -- helpers --------------------------------------------------------------------------------------------

    @staticmethod
    def _locked_job(connection: Connection, tenant: str, job_id: str, now: datetime) -> Any:
        """The job's row, locked after its cluster's row (the lock order of expiry: cluster, then its jobs),
        with the cluster's expired leases settled first: so an expired job is seen lost."""
        names.check(names.name_error("job_id", job_id))  # no other text can name a job, so none reaches SQL
        key = (JOBS.c.tenant == tenant) & (JOBS.c.job_id == job_id)
        for _ in range(ATTEMPTS):
            peek = connection.execute(select(JOBS.c.cluster_name, JOBS.c.state).where(key)).first()
            if peek is None:
                raise NotFoundError("job", job_id)
            locked = peek.cluster_name if JobState(peek.state).active else None
            if locked is not None:
                lock_and_expire(connection, tenant, locked, now)
            row = connection.execute(select(*JOBS.c).where(key).with_for_update()).first()
            if row is None:
                raise NotFoundError("job", job_id)
            if JobState(row.state).active and row.cluster_name != locked:
                continue  # re-registered onto another cluster between the two reads: lock that one
            if JobState(row.state).active and expired(row.lease_expires_at, now):  # on no cluster
                expire_due(connection, tenant, None, now)
                row = connection.execute(select(*JOBS.c).where(key).with_for_update()).first()
            return row
        raise RegistryBusyError(f"Job {job_id!r} kept moving between clusters.")

    @staticmethod
    def _job(session: Session, tenant: str, job_id: str) -> Job:
        names.check(names.name_error("job_id", job_id))  # no other text can name a job, so none reaches SQL
        row = session.scalars(select(Job).where(Job.tenant == tenant, Job.job_id == job_id)).one_or_none()
        if row is None:
            raise NotFoundError("job", job_id)
        return row

    @staticmethod
    def _check_if_match(row: Any, if_match: str | None) -> None:
        current = make_etag(row.version, row.body_digest)
        if if_match is not None and not etag_matches(if_match, current):
            raise PreconditionFailedError("job", row.job_id, if_match, current)


class _Retry(Exception):
    """The job changed between two statements of a write: run it again."""


def _release(connection: Connection, tenant: str, row: Any) -> None:
    """Count an active job out of its (locked) cluster's active jobs and held GPUs."""
    if row.cluster_name is not None and JobState(row.state).active:
        connection.execute(
            update(CLUSTERS)
            .where(CLUSTERS.c.tenant == tenant, CLUSTERS.c.name == row.cluster_name)
            .values(active_jobs=CLUSTERS.c.active_jobs - 1, held_gpus=CLUSTERS.c.held_gpus - row.gpus)
        )


def _replace(row: Any, values: Mapping[str, Any]) -> Any:
    return SimpleNamespace(**{**row._asdict(), **values})
