"""A cluster's occupancy: per node, the active job holding it, and its free GPUs (``GET …/occupancy``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from . import names
from .errors import NotFoundError
from .leases import lock_and_expire
from .models import CLUSTERS, JOBS, NODES
from .rows import utc, utc_now
from .transactions import run_write_core


def occupancy(engine: Engine, tenant: str, name: str) -> dict[str, Any]:
    """Per node of the cluster, the active job holding it (or None), and its free GPUs. The nodes are the
    topology's when it has one, else those active jobs hold."""
    names.check(names.name_error("name", name))
    now = utc_now()
    with engine.connect() as connection:
        due = connection.execute(
            select(CLUSTERS.c.lease_due).where(CLUSTERS.c.tenant == tenant, CLUSTERS.c.name == name)
        ).first()
        connection.rollback()
    if due is None:
        raise NotFoundError("cluster", name)
    if due.lease_due is not None and utc(due.lease_due) <= now:
        run_write_core(engine, lambda c: lock_and_expire(c, tenant, name, now))
    with engine.connect() as connection:  # one snapshot (SQLite: one read transaction)
        if engine.dialect.name == "postgresql":
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
