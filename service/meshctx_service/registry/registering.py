"""A job's registration: planned on a snapshot of its cluster outside any transaction, then written in a few
Core statements under the cluster's lock (``Registry.register_job`` checks the input and calls ``register``).

Planning, the capacity pre-check and placement run on the snapshot; the write re-checks capacity under the
cluster's lock (one ``UPDATE … RETURNING`` that also moves its counters) and, if the cluster changed shape since
(``_ClusterChanged``), the registration plans again. A new job takes the hot path (``INSERT … ON CONFLICT DO
NOTHING``); a repeat, a replacement (If-Match) or a lost race takes the full write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Engine, Integer, bindparam, case, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meshctx.job_states import JobState
from meshctx.plan.request import TopologyRequest

from .capacity import Fit, check_free, fit
from .errors import (
    CapacityError,
    JobExistsError,
    JobNotUpdatableError,
    NodesInUseError,
    NotFoundError,
    PreconditionFailedError,
    RegistryBusyError,
)
from .etags import etag_matches, make_etag
from .leases import expire_due, expired, expires, lock_and_expire
from .models import CLUSTERS, JOBS, NODES
from .place import check_host_count, placement_summary
from .records import Registration
from .rows import job_record, utc, utc_now
from .transactions import ATTEMPTS, run_write_core


@dataclass(frozen=True)
class Ask:
    """A registration, checked (``Registry.register_job``): ``hosts`` its allocation expanded, ``lease`` its lease
    in seconds (0: none), ``digest`` the digest of its body (a repeat has the stored job's)."""

    tenant: str
    job_id: str
    request: TopologyRequest
    cluster: str | None
    labels: dict[str, str]
    if_match: str | None
    hosts: list[str] | None
    lease: int
    digest: str


class Registrations:
    """The registrations of one engine's registry; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: (tenant, cluster) → its shape as this process last read it: registrations plan on it, and their write
        #: (which reads the shape back from the row it locks) plans again if it changed.
        self._shapes: dict[tuple[str, str | None], _Shape] = {}
        # INSERT … ON CONFLICT (tenant, job_id) DO NOTHING in this engine's dialect, built once: a statement object
        # made per call costs more Python (its construction and cache key) than its round trip.
        dialect = sqlite_insert if engine.dialect.name == "sqlite" else postgresql_insert
        self._add_new = dialect(JOBS).on_conflict_do_nothing(index_elements=["tenant", "job_id"]).returning(JOBS.c.id)

    def register(self, ask: Ask) -> Registration:
        """Register the checked job; see ``Registry.register_job``."""
        tenant, job_id, cluster, hosts = ask.tenant, ask.job_id, ask.cluster, ask.hosts
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
            if stored is not None and stored.body_digest == ask.digest:
                planned = None  # a repeat: the write returns the stored job
            else:
                planned = self._plan(ask.request, shape, stored if fresh else None, hosts, fresh=fresh)
            try:
                if planned is not None and ask.if_match is None:
                    try:  # the common case, a new job
                        return run_write_core(self.engine, partial(self._write_new, ask=ask, planned=planned))
                    except _Exists:
                        pass
                return run_write_core(self.engine, partial(self._write, ask=ask, planned=planned))
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
        if shape is not None and fresh and (shape.lease_due is None or utc(shape.lease_due) > utc_now()):
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

    def _write(self, connection: Connection, *, ask: Ask, planned: _Planned | None) -> Registration:
        """The write of any registration: a few Core statements (the job's row, one ``UPDATE … RETURNING`` per
        cluster that both locks it and moves its counters, the insert or update), plus node rows when the job
        holds nodes."""
        tenant, job_id, cluster, hosts, if_match = ask.tenant, ask.job_id, ask.cluster, ask.hosts, ask.if_match
        now = utc_now()
        row = connection.execute(
            select(*_SUMMARY).where(JOBS.c.tenant == tenant, JOBS.c.job_id == job_id).with_for_update()
        ).first()
        current = make_etag(row.version, row.body_digest) if row is not None else None
        if if_match is not None and not etag_matches(if_match, current):
            raise PreconditionFailedError("job", job_id, if_match, current)
        state = None
        if row is not None:
            state = JobState(row.state)
            if state.active and expired(row.lease_expires_at, now):
                lock_and_expire(connection, tenant, row.cluster_name, now)
                state = JobState.LOST
            if row.body_digest == ask.digest:
                if state.active and row.lease_seconds:
                    connection.execute(
                        update(JOBS).where(JOBS.c.id == row.id).values(lease_expires_at=expires(now, row.lease_seconds))
                    )
                return Registration(job_record(self._full(connection, row.id)), created=False, changed=False)
            if if_match is None:
                assert current is not None
                raise JobExistsError(job_id, current)
            if state != JobState.REGISTERED:
                raise JobNotUpdatableError(job_id, state.value)
        if planned is None:
            raise _ClusterChanged  # the stored job changed under the snapshot: plan again
        fitted = planned.fitted
        expiry = expires(now, ask.lease)
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
        values = _job_values(ask, planned, now, expiry)
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
        record = job_record(
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

    def _write_new(self, connection: Connection, *, ask: Ask, planned: _Planned) -> Registration:
        """The write of a job not registered yet, the hot path: ``INSERT … ON CONFLICT DO NOTHING`` (``_Exists``
        when it is registered after all: the full write decides), then the cluster's lock and counters in one
        ``UPDATE … RETURNING``; with BEGIN and COMMIT, four statements."""
        tenant, cluster, hosts = ask.tenant, ask.cluster, ask.hosts
        now = utc_now()
        expiry = expires(now, ask.lease)
        values = _job_values(ask, planned, now, expiry)
        fields = {"tenant": tenant, "job_id": ask.job_id, "state": JobState.REGISTERED.value, "version": 1}
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
        record = job_record(SimpleNamespace(created_at=now, **fields, **values))
        return Registration(record, created=True, changed=True)

    @staticmethod
    def _full(connection: Connection, pk: int) -> Any:
        return connection.execute(select(*JOBS.c).where(JOBS.c.id == pk)).one()


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
    if locked.lease_due is not None and utc(locked.lease_due) <= now:
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


def _job_values(ask: Ask, planned: _Planned, now: datetime, expiry: datetime | None) -> dict[str, Any]:
    """The columns a registration writes (besides its key, state, version and created_at)."""
    fitted = planned.fitted
    return {
        "cluster_name": ask.cluster,
        "labels": ask.labels,
        "request": fitted.request,
        "plan": fitted.plan,
        "fingerprint": fitted.fingerprint,
        "gpus": fitted.gpus,
        "body_digest": ask.digest,
        "placement": planned.placement,
        "nodes": ask.hosts,
        "lease_seconds": ask.lease,
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
