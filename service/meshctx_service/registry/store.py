"""``Registry``: every registry operation, each one transaction, each scoped to one tenant.

A row of another tenant is never read, changed or even acknowledged: every query filters on the tenant,
and a miss is ``NotFoundError`` whether the name is free or taken by someone else. Writes go through
``run_write``/``run_write_core`` (see ``transactions.py`` for the concurrency argument, ``leases.py`` for expiry);
reads use plain snapshots. The job writes are SQLAlchemy Core statements (no ORM unit of work on the hot path).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Select,
    bindparam,
    case,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute, Session, defer

from meshctx.job_states import NAMES, TRANSITIONS, JobState
from meshctx.plan.request import TopologyRequest

from . import names
from .capacity import Fit, check_free, fit
from .errors import (
    CapacityError,
    ClusterInUseError,
    FingerprintMismatchError,
    IllegalTransitionError,
    InvalidInputError,
    JobEndedError,
    JobExistsError,
    JobNotUpdatableError,
    NodesInUseError,
    NotFoundError,
    PreconditionFailedError,
    RegistryBusyError,
)
from .etags import body_digest, etag_matches, make_etag
from .leases import ACTIVE_NAMES, MAX_LEASE_S, expire_due, expires
from .models import ATTESTATIONS, CLUSTERS, JOBS, NODES, Attestation, Cluster, Job
from .paging import DEFAULT_LIMIT, check_limit, decode_cursor, encode_cursor
from .place import MAX_NODES, check_host_count, checked_topology, expanded_nodes, placement_summary
from .records import AttestationRecord, ClusterRecord, JobRecord, Page, Registration
from .transactions import ATTEMPTS, lock_cluster, read_session, run_write, run_write_core

#: ``MESHCTX_JOB_LEASE_S``'s default: a job not heard from for this long is lost.
DEFAULT_LEASE_S = 600

Row = TypeVar("Row", Cluster, Job)
Item = TypeVar("Item", ClusterRecord, JobRecord)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _cluster_record(row: Cluster, *, topology: bool = True) -> ClusterRecord:
    return ClusterRecord(
        tenant=row.tenant,
        name=row.name,
        nodes=row.nodes,
        gpus_per_node=row.gpus_per_node,
        nvlink_domain=row.nvlink_domain,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        topology=dict(row.topology) if topology and row.topology is not None else None,
        with_topology=topology,
    )


def _job_record(row: Any) -> JobRecord:
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
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        placement=dict(row.placement) if row.placement is not None else None,
        nodes=list(row.nodes) if row.nodes is not None else None,
        lease_seconds=row.lease_seconds,
        lease_expires_at=_utc(row.lease_expires_at) if row.lease_expires_at is not None else None,
    )


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
        #: (tenant, cluster) → its shape as this process last read it: registrations plan on it, and their write
        #: (which reads the shape back from the row it locks) plans again if it changed.
        self._shapes: dict[tuple[str, str | None], _Shape] = {}
        # INSERT … ON CONFLICT (tenant, job_id) DO NOTHING in this engine's dialect, built once: a statement object
        # made per call costs more Python (its construction and cache key) than its round trip.
        dialect = sqlite_insert if engine.dialect.name == "sqlite" else postgresql_insert
        self._add_new = dialect(JOBS).on_conflict_do_nothing(index_elements=["tenant", "job_id"]).returning(JOBS.c.id)

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
            row = _settled_cluster(session, tenant, name, now)
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
        self, tenant: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None, topology: bool = False
    ) -> Page[ClusterRecord]:
        """Clusters by name; their topologies (up to ``MAX_NODES`` nodes each) only when asked for, else not even
        read from the database."""
        query = select(Cluster).where(Cluster.tenant == tenant)
        if not topology:
            query = query.options(defer(Cluster.topology))
        return self._page(query, Cluster.name, limit, cursor, lambda row: _cluster_record(row, topology=topology))

    def delete_cluster(self, tenant: str, name: str) -> None:
        """Refused while active jobs are planned on it; finished jobs keep its name for the record."""
        names.check(names.name_error("name", name))

        def work(session: Session) -> None:
            row = _settled_cluster(session, tenant, name, _now())
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
        for attempt in range(ATTEMPTS):
            # A job with an allocation reads a fresh snapshot (its capacity is checked before the costly placement);
            # one without plans on the cluster's shape as this process last saw it, which the write verifies.
            cached = self._shapes.get((tenant, cluster)) if hosts is None and attempt == 0 else None
            if cluster is None or cached is not None:
                shape, stored, fresh = cached, None, False
            else:
                shape, stored = self._snapshot(tenant, job_id, cluster, topology=hosts is not None)
                self._shapes[(tenant, cluster)] = shape
                fresh = True
            if stored is not None and stored.body_digest == digest:
                planned = None  # a repeat: the write returns the stored job
            else:
                planned = self._plan(request, shape, stored if fresh else None, hosts, fresh=fresh)
            args: dict[str, Any] = {
                "tenant": tenant,
                "job_id": job_id,
                "cluster": cluster,
                "labels": labels,
                "hosts": hosts,
            }
            args |= {"lease": lease, "digest": digest, "planned": planned}
            try:
                if planned is not None and if_match is None:
                    try:  # the common case, a new job
                        return run_write_core(self.engine, partial(self._register_new, **args))
                    except _Exists:
                        pass
                return run_write_core(self.engine, partial(self._register, if_match=if_match, **args))
            except _ClusterChanged:
                self._shapes.pop((tenant, cluster), None)
                continue
        raise RegistryBusyError(f"Cluster {cluster!r} kept changing shape while job {job_id!r} was registered.")

    def _snapshot(self, tenant: str, job_id: str, cluster: str, *, topology: bool) -> tuple[_Shape, Any]:
        """The cluster's shape and counters and the stored job's summary, as of now (no lock)."""
        with self.engine.connect() as connection:
            extra = [CLUSTERS.c.held_gpus, CLUSTERS.c.lease_due, *([CLUSTERS.c.topology] if topology else [])]
            where = (CLUSTERS.c.tenant == tenant) & (CLUSTERS.c.name == cluster)
            row = connection.execute(select(*_SHAPE, *extra).where(where)).first()
            if row is None:
                raise NotFoundError("cluster", cluster)
            stored = connection.execute(
                select(JOBS.c.body_digest, JOBS.c.state, JOBS.c.cluster_name, JOBS.c.gpus).where(
                    JOBS.c.tenant == tenant, JOBS.c.job_id == job_id
                )
            ).first()
            connection.rollback()
        shape = _Shape(
            key=tuple(row[: len(_SHAPE)]),
            name=row.name,
            nodes=row.nodes,
            gpus_per_node=row.gpus_per_node,
            nvlink_domain=row.nvlink_domain,
            held_gpus=row.held_gpus,
            lease_due=row.lease_due,
            topology=row.topology if topology else None,
        )
        return shape, stored

    @staticmethod
    def _plan(
        request: TopologyRequest, shape: _Shape | None, stored: Any, hosts: list[str] | None, *, fresh: bool
    ) -> _Planned:
        """Plan the job on the cluster's shape; on a fresh snapshot also check its free GPUs (unless expired
        leases may free some), then place its allocation: all outside the write transaction, the cheap checks
        before the costly one."""
        fitted = fit(request, shape)
        if shape is not None and fresh and (shape.lease_due is None or _utc(shape.lease_due) > _now()):
            active = stored is not None and stored.cluster_name == shape.name and JobState(stored.state).active
            check_free(shape, shape.held_gpus - (stored.gpus if active else 0), fitted.gpus)
        placement = None
        if hosts is not None and shape is not None:
            if shape.topology is not None:
                assert fitted.mesh is not None  # fit raises unless the request planned
                placement = placement_summary(fitted.mesh, shape.topology, hosts)
            else:
                check_host_count(hosts, shape.nodes, shape.gpus_per_node, fitted.gpus)
        return _Planned(fitted, placement, shape.key if shape is not None else None)

    def _register(
        self,
        connection: Connection,
        *,
        tenant: str,
        job_id: str,
        cluster: str | None,
        labels: dict[str, str],
        if_match: str | None,
        hosts: list[str] | None,
        lease: int,
        digest: str,
        planned: _Planned | None,
    ) -> Registration:
        """The write of any registration: a few Core statements (the job's row, one ``UPDATE … RETURNING`` per
        cluster that both locks it and moves its counters, the insert or update), plus node rows when the job
        holds nodes."""
        now = _now()
        row = connection.execute(
            select(*_SUMMARY).where(JOBS.c.tenant == tenant, JOBS.c.job_id == job_id).with_for_update()
        ).first()
        current = make_etag(row.version, row.body_digest) if row is not None else None
        if if_match is not None and not etag_matches(if_match, current):
            raise PreconditionFailedError("job", job_id, if_match, current)
        state = None
        if row is not None:
            state = JobState(row.state)
            if state.active and _expired(row.lease_expires_at, now):
                _lock_and_expire(connection, tenant, row.cluster_name, now)
                state = JobState.LOST
            if row.body_digest == digest:
                if state.active and row.lease_seconds:
                    connection.execute(
                        update(JOBS).where(JOBS.c.id == row.id).values(lease_expires_at=expires(now, row.lease_seconds))
                    )
                return Registration(_job_record(self._full(connection, row.id)), created=False, changed=False)
            if if_match is None:
                assert current is not None
                raise JobExistsError(job_id, current)
            if state != JobState.REGISTERED:
                raise JobNotUpdatableError(job_id, state.value)
        if planned is None:
            raise _ClusterChanged  # the stored job changed under the snapshot: plan again
        fitted = planned.fitted
        expiry = expires(now, lease)
        # Every cluster this write changes, locked in name order by the UPDATE that moves its counters.
        deltas: dict[str, list[int]] = {}
        if row is not None and state is not None and state.active and row.cluster_name is not None:
            deltas[row.cluster_name] = [-1, -row.gpus]
        if cluster is not None:
            delta = deltas.setdefault(cluster, [0, 0])
            delta[0] += 1
            delta[1] += fitted.gpus
        for name in sorted(deltas):
            jobs_delta, gpus_delta = deltas[name]
            key = planned.cluster_key if name == cluster else None
            mine = name == cluster
            _hold(connection, tenant, name, jobs_delta, gpus_delta, key, expiry if mine else None, now, fitted.gpus)
        if row is not None and row.nodes:
            connection.execute(delete(NODES).where(NODES.c.job_pk == row.id))
        if hosts is not None and cluster is not None:
            _check_nodes_free(connection, tenant, cluster, hosts)
        values = _job_values(cluster, labels, hosts, lease, digest, planned, now, expiry)
        if row is None:
            version, created_at = 1, now
            fields = {"tenant": tenant, "job_id": job_id, "state": JobState.REGISTERED.value, "version": 1}
            pk = connection.execute(
                insert(JOBS).values(created_at=now, **fields, **values).returning(JOBS.c.id)
            ).scalar_one()
        else:
            pk, version, created_at = row.id, row.version + 1, row.created_at
            connection.execute(update(JOBS).where(JOBS.c.id == pk).values(version=version, **values))
        if hosts is not None and cluster is not None:
            connection.execute(
                insert(NODES), [{"tenant": tenant, "cluster_name": cluster, "host": h, "job_pk": pk} for h in hosts]
            )
        record = _job_record(
            SimpleNamespace(
                tenant=tenant,
                job_id=job_id,
                state=JobState.REGISTERED.value,
                version=version,
                created_at=created_at,
                **values,
            )
        )
        return Registration(record, created=row is None, changed=True)

    def _register_new(
        self,
        connection: Connection,
        *,
        tenant: str,
        job_id: str,
        cluster: str | None,
        labels: dict[str, str],
        hosts: list[str] | None,
        lease: int,
        digest: str,
        planned: _Planned,
    ) -> Registration:
        """The write of a job not registered yet, the hot path: ``INSERT … ON CONFLICT DO NOTHING`` (``_Exists``
        when it is registered after all: the full write decides), then the cluster's lock and counters in one
        ``UPDATE … RETURNING``; with BEGIN and COMMIT, four statements."""
        now = _now()
        expiry = expires(now, lease)
        values = _job_values(cluster, labels, hosts, lease, digest, planned, now, expiry)
        fields = {"tenant": tenant, "job_id": job_id, "state": JobState.REGISTERED.value, "version": 1}
        pk = connection.execute(self._add_new, {"created_at": now, **fields, **values}).scalar_one_or_none()
        if pk is None:
            raise _Exists
        if cluster is not None:
            gpus = planned.fitted.gpus
            _hold(connection, tenant, cluster, 1, gpus, planned.cluster_key, expiry, now, gpus)
            if hosts is not None:
                _check_nodes_free(connection, tenant, cluster, hosts)
                connection.execute(
                    insert(NODES), [{"tenant": tenant, "cluster_name": cluster, "host": h, "job_pk": pk} for h in hosts]
                )
        record = _job_record(SimpleNamespace(created_at=now, **fields, **values))
        return Registration(record, created=True, changed=True)

    def get_job(self, tenant: str, job_id: str) -> JobRecord:
        with read_session(self.engine) as session:
            row = self._job(session, tenant, job_id)
            if not (JobState(row.state).active and _expired(row.lease_expires_at, _now())):
                return _job_record(row)
        # Its lease ran out and no write has noticed yet: settle its cluster's leases, then answer.
        return run_write_core(self.engine, lambda c: _job_record(self._locked_job(c, tenant, job_id, _now())))

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
        """Removes the job and its attestations, freeing its GPUs and nodes."""

        def work(connection: Connection) -> None:
            row = self._locked_job(connection, tenant, job_id, _now())
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
            now = _now()
            row = self._locked_job(connection, tenant, job_id, now)
            self._check_if_match(row, if_match)
            current = JobState(row.state)
            if target == current:
                return _job_record(row)
            allowed = TRANSITIONS[current]
            if target not in allowed:
                raise IllegalTransitionError(job_id, current.value, target.value, [s.value for s in allowed])
            values: dict[str, Any] = {"state": target.value, "version": row.version + 1, "updated_at": now}
            if not target.active:
                _release(connection, tenant, row)
                connection.execute(delete(NODES).where(NODES.c.job_pk == row.id))
                values["lease_expires_at"] = None
            connection.execute(update(JOBS).where(JOBS.c.id == row.id).values(**values))
            return _job_record(_replace(row, values))

        return run_write_core(self.engine, work)

    def heartbeat(self, tenant: str, job_id: str) -> JobRecord:
        """Renew an active job's lease (``lease_expires_at`` = now + its ``lease_seconds``); ``JobEndedError`` for
        an ended job, a lost one included. A job without a lease is answered as it is."""
        names.check(names.name_error("job_id", job_id))

        def work(connection: Connection) -> JobRecord:
            now = _now()
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
                    return _job_record(renewed)
            row = self._locked_job(connection, tenant, job_id, now)  # settles an expired lease first
            if not JobState(row.state).active:
                raise JobEndedError(job_id, row.state)
            if row.lease_seconds and row.lease_seconds != lease:
                raise _Retry  # re-registered with another lease in between: renew again
            return _job_record(row)  # no lease to renew

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
            now = _now()
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
            return [AttestationRecord(job_id, a.expected, a.reported, a.matched, _utc(a.created_at)) for a in found]

    def occupancy(self, tenant: str, name: str) -> dict[str, Any]:
        """Per node of the cluster, the active job holding it (or None), and its free GPUs. The nodes are the
        topology's when it has one, else those active jobs hold."""
        names.check(names.name_error("name", name))
        now = _now()
        with self.engine.connect() as connection:
            due = connection.execute(
                select(CLUSTERS.c.lease_due).where(CLUSTERS.c.tenant == tenant, CLUSTERS.c.name == name)
            ).first()
            connection.rollback()
        if due is None:
            raise NotFoundError("cluster", name)
        if due.lease_due is not None and _utc(due.lease_due) <= now:
            run_write_core(self.engine, lambda c: _lock_and_expire(c, tenant, name, now))
        with self.engine.connect() as connection:  # one snapshot (SQLite: one read transaction)
            if self.engine.dialect.name == "postgresql":
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            cluster = connection.execute(
                select(CLUSTERS).where(CLUSTERS.c.tenant == tenant, CLUSTERS.c.name == name)
            ).first()
            if cluster is None:
                raise NotFoundError("cluster", name)
            held = connection.execute(
                select(NODES.c.host, JOBS.c.job_id)
                .join(JOBS, JOBS.c.id == NODES.c.job_pk)
                .where(NODES.c.tenant == tenant, NODES.c.cluster_name == name)
            ).all()
            connection.rollback()
        holder = {row.host: row.job_id for row in held}
        listed = [n["name"] for n in cluster.topology["nodes"]] if cluster.topology else []
        known = set(listed)
        hosts = listed + sorted(h for h in holder if h not in known)
        capacity = cluster.nodes * cluster.gpus_per_node
        return {
            "cluster": name,
            "nodes": cluster.nodes,
            "gpus_per_node": cluster.gpus_per_node,
            "gpus": capacity,
            "active_jobs": cluster.active_jobs,
            "held_gpus": cluster.held_gpus,
            "free_gpus": capacity - cluster.held_gpus,
            "held_nodes": len(holder),
            "occupancy": [{"node": host, "job": holder.get(host)} for host in hosts],
        }

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
                _lock_and_expire(connection, tenant, locked, now)
            row = connection.execute(select(*JOBS.c).where(key).with_for_update()).first()
            if row is None:
                raise NotFoundError("job", job_id)
            if JobState(row.state).active and row.cluster_name != locked:
                continue  # re-registered onto another cluster between the two reads: lock that one
            if JobState(row.state).active and _expired(row.lease_expires_at, now):  # on no cluster
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
    def _full(connection: Connection, pk: int) -> Any:
        return connection.execute(select(*JOBS.c).where(JOBS.c.id == pk)).one()

    @staticmethod
    def _check_if_match(row: Any, if_match: str | None) -> None:
        current = make_etag(row.version, row.body_digest)
        if if_match is not None and not etag_matches(if_match, current):
            raise PreconditionFailedError("job", row.job_id, if_match, current)


class _Retry(Exception):
    """The job changed between two statements of a write: run it again."""


class _Exists(Exception):
    """The fast path's insert found the job already registered."""


class _ClusterChanged(Exception):
    """The cluster (or the job) changed between the snapshot a registration planned on and its write."""


@dataclass(frozen=True)
class _Planned:
    fitted: Fit
    placement: dict[str, Any] | None
    cluster_key: tuple[Any, ...] | None  # the ``_SHAPE`` of the cluster it was planned on


@dataclass(frozen=True)
class _Shape:
    """A cluster as a registration plans on it; ``key`` (its ``_SHAPE`` columns) tells whether it changed."""

    key: tuple[Any, ...]
    name: str
    nodes: int
    gpus_per_node: int
    nvlink_domain: int | None
    held_gpus: int
    lease_due: datetime | None
    topology: dict[str, Any] | None


#: What a plan depends on; ``id`` and ``created_at`` tell a cluster deleted and created again from the old one.
_SHAPE = (
    CLUSTERS.c.id,
    CLUSTERS.c.created_at,
    CLUSTERS.c.version,
    CLUSTERS.c.name,
    CLUSTERS.c.nodes,
    CLUSTERS.c.gpus_per_node,
    CLUSTERS.c.nvlink_domain,
)


#: What the register write reads of an existing job (not its request, plan or placement).
_SUMMARY = (
    JOBS.c.id,
    JOBS.c.version,
    JOBS.c.body_digest,
    JOBS.c.state,
    JOBS.c.cluster_name,
    JOBS.c.gpus,
    JOBS.c.nodes,
    JOBS.c.lease_seconds,
    JOBS.c.lease_expires_at,
    JOBS.c.created_at,
)


def _expired(lease_expires_at: datetime | None, now: datetime) -> bool:
    return lease_expires_at is not None and _utc(lease_expires_at) < now


def _settled_cluster(session: Session, tenant: str, name: str, now: datetime) -> Cluster | None:
    """The cluster's ORM row, locked, with its expired leases settled (so its counters hold only live jobs)."""
    row = lock_cluster(session, tenant, name)
    if row is not None and row.lease_due is not None and _utc(row.lease_due) <= now:
        expire_due(session.connection(), tenant, name, now)
        session.refresh(row)
    return row


def _lock_and_expire(connection: Connection, tenant: str, cluster: str | None, now: datetime) -> None:
    """Lock ``cluster``'s row and settle its expired leases if its ``lease_due`` has passed."""
    if cluster is None:
        expire_due(connection, tenant, None, now)
        return
    due = connection.execute(
        select(CLUSTERS.c.lease_due).where(CLUSTERS.c.tenant == tenant, CLUSTERS.c.name == cluster).with_for_update()
    ).scalar_one_or_none()
    if due is not None and _utc(due) <= now:
        expire_due(connection, tenant, cluster, now)


def _release(connection: Connection, tenant: str, row: Any) -> None:
    """Count an active job out of its (locked) cluster's active jobs and held GPUs."""
    if row.cluster_name is not None and JobState(row.state).active:
        connection.execute(
            update(CLUSTERS)
            .where(CLUSTERS.c.tenant == tenant, CLUSTERS.c.name == row.cluster_name)
            .values(active_jobs=CLUSTERS.c.active_jobs - 1, held_gpus=CLUSTERS.c.held_gpus - row.gpus)
        )


def _hold(
    connection: Connection,
    tenant: str,
    name: str,
    jobs_delta: int,
    gpus_delta: int,
    planned_on: tuple[Any, ...] | None,
    expiry: datetime | None,
    now: datetime,
    needed: int = 0,
) -> None:
    """Lock cluster ``name`` and move its counters in one ``UPDATE … RETURNING`` (lowering its ``lease_due`` to a
    new lease's ``expiry``); for the cluster a job is planned on (``planned_on``, its ``_SHAPE``), check it has
    not changed since, settle its expired leases if due, and check its capacity for the job's ``needed`` GPUs."""
    params = {"b_tenant": tenant, "b_name": name, "b_jobs": jobs_delta, "b_gpus": gpus_delta, "b_expiry": expiry}
    locked = connection.execute(_HOLD_LEASE if expiry is not None else _HOLD, params).first()
    if locked is None:
        if planned_on is not None:
            raise _ClusterChanged  # deleted since it was planned on: look again (then 404)
        raise NotFoundError("cluster", name)
    if planned_on is None:
        return
    if tuple(locked[: len(_SHAPE)]) != planned_on:
        raise _ClusterChanged
    held = locked.held_gpus
    if locked.lease_due is not None and _utc(locked.lease_due) <= now:
        held -= sum(lost.gpus for lost in expire_due(connection, tenant, name, now, keep=expiry))
    capacity = locked.nodes * locked.gpus_per_node
    if gpus_delta > 0 and held > capacity:
        raise CapacityError(name, capacity, held - needed, needed)


#: ``_hold``'s statement, built once (with ``_HOLD_LEASE`` lowering ``lease_due`` to a new lease's expiry).
_HOLD = (
    update(CLUSTERS)
    .where(CLUSTERS.c.tenant == bindparam("b_tenant"), CLUSTERS.c.name == bindparam("b_name"))
    .values(
        active_jobs=CLUSTERS.c.active_jobs + bindparam("b_jobs", type_=Integer),
        held_gpus=CLUSTERS.c.held_gpus + bindparam("b_gpus", type_=Integer),
    )
    .returning(*_SHAPE, CLUSTERS.c.held_gpus, CLUSTERS.c.lease_due)
)
_EXPIRY = bindparam("b_expiry", type_=CLUSTERS.c.lease_due.type)
_HOLD_LEASE = _HOLD.values(
    lease_due=case(
        (or_(CLUSTERS.c.lease_due.is_(None), CLUSTERS.c.lease_due > _EXPIRY), _EXPIRY), else_=CLUSTERS.c.lease_due
    )
)


def _job_values(
    cluster: str | None,
    labels: dict[str, str],
    hosts: list[str] | None,
    lease: int,
    digest: str,
    planned: _Planned,
    now: datetime,
    expiry: datetime | None,
) -> dict[str, Any]:
    """The columns a registration writes (besides its key, state, version and created_at)."""
    fitted = planned.fitted
    return {
        "cluster_name": cluster,
        "labels": labels,
        "request": fitted.request,
        "plan": fitted.plan,
        "fingerprint": fitted.fingerprint,
        "gpus": fitted.gpus,
        "body_digest": digest,
        "placement": planned.placement,
        "nodes": hosts,
        "lease_seconds": lease,
        "lease_expires_at": expiry,
        "updated_at": now,
    }


def _check_nodes_free(connection: Connection, tenant: str, cluster: str, hosts: list[str]) -> None:
    held: list[Any] = []
    for start in range(0, len(hosts), 500):
        held += connection.execute(
            select(NODES.c.host, JOBS.c.job_id)
            .join(JOBS, JOBS.c.id == NODES.c.job_pk)
            .where(
                NODES.c.tenant == tenant, NODES.c.cluster_name == cluster, NODES.c.host.in_(hosts[start : start + 500])
            )
        ).all()
    if held:
        raise NodesInUseError(cluster, [(r.host, r.job_id) for r in held])


def _replace(row: Any, values: Mapping[str, Any]) -> Any:
    return SimpleNamespace(**{**row._asdict(), **values})
