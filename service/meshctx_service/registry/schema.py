"""Start-up's schema check: the registry's database at ``HEAD_REVISION`` before the service says it is ready.

A plain SQLite file (``meshctx serve``'s default) is checked with one query — and, when it has no table yet,
created from ``SQLITE_SCHEMA`` and stamped ``HEAD_REVISION`` in one ``BEGIN IMMEDIATE`` transaction, so
concurrent start-ups create it once — with the standard library's ``sqlite3`` alone: start-up loads neither
SQLAlchemy nor the store (~0.2 s CPU), which load with the registry's first request (``lazy.py``).
``SQLITE_SCHEMA`` is what the models create on SQLite (a test keeps the two equal, another compares it with what
the migrations build). Every other database — PostgreSQL, an older revision, tables without a revision — goes
to ``migrate.bring_to_head``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .engine import BUSY_TIMEOUT_S, use_wal

#: The newest migration's revision id; a test keeps it equal to what Alembic finds in ``migrations/``.
HEAD_REVISION = "0004"

#: The schema at ``HEAD_REVISION`` on SQLite, as the models create it (``alembic_version`` last).
SQLITE_SCHEMA = (
    """
CREATE TABLE clusters (
    id INTEGER NOT NULL,
    tenant VARCHAR(128) NOT NULL,
    name VARCHAR(128) NOT NULL,
    nodes INTEGER NOT NULL,
    gpus_per_node INTEGER NOT NULL,
    nvlink_domain INTEGER,
    version INTEGER NOT NULL,
    active_jobs INTEGER DEFAULT '0' NOT NULL,
    held_gpus INTEGER DEFAULT '0' NOT NULL,
    topology JSON,
    lease_due DATETIME,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_clusters_tenant_name UNIQUE (tenant, name),
    CONSTRAINT ck_clusters_nodes CHECK (nodes >= 1),
    CONSTRAINT ck_clusters_gpus_per_node CHECK (gpus_per_node >= 1),
    CONSTRAINT ck_clusters_nvlink_domain CHECK (nvlink_domain IS NULL OR nvlink_domain >= 1)
)""",
    """
CREATE TABLE jobs (
    id INTEGER NOT NULL,
    tenant VARCHAR(128) NOT NULL,
    job_id VARCHAR(128) NOT NULL,
    cluster_name VARCHAR(128),
    labels JSON NOT NULL,
    request JSON NOT NULL,
    "plan" JSON NOT NULL,
    fingerprint VARCHAR(80) NOT NULL,
    gpus INTEGER NOT NULL,
    state VARCHAR(16) NOT NULL,
    body_digest VARCHAR(64) NOT NULL,
    placement JSON,
    nodes JSON,
    lease_seconds INTEGER DEFAULT '0' NOT NULL,
    lease_expires_at DATETIME,
    version INTEGER NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_jobs_tenant_job_id UNIQUE (tenant, job_id),
    CONSTRAINT ck_jobs_state CHECK (state IN ('registered', 'running', 'finished', 'failed', 'lost')),
    CONSTRAINT ck_jobs_gpus CHECK (gpus >= 1)
)""",
    "CREATE INDEX ix_jobs_tenant_cluster_state ON jobs (tenant, cluster_name, state, gpus)",
    "CREATE INDEX ix_jobs_tenant_state ON jobs (tenant, state)",
    "CREATE INDEX ix_jobs_lease ON jobs (tenant, cluster_name, lease_expires_at)",
    """
CREATE TABLE attestations (
    id INTEGER NOT NULL,
    job_pk INTEGER NOT NULL,
    expected VARCHAR(80) NOT NULL,
    reported VARCHAR(80) NOT NULL,
    matched BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(job_pk) REFERENCES jobs (id) ON DELETE CASCADE
)""",
    "CREATE INDEX ix_attestations_job ON attestations (job_pk, id)",
    """
CREATE TABLE job_nodes (
    id INTEGER NOT NULL,
    tenant VARCHAR(128) NOT NULL,
    cluster_name VARCHAR(128) NOT NULL,
    host VARCHAR(253) NOT NULL,
    job_pk INTEGER NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_job_nodes_host UNIQUE (tenant, cluster_name, host),
    FOREIGN KEY(job_pk) REFERENCES jobs (id) ON DELETE CASCADE
)""",
    "CREATE INDEX ix_job_nodes_job ON job_nodes (job_pk)",
    """
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)""",
)


def ensure_schema(url: str) -> None:
    """Bring the database at ``url`` to ``HEAD_REVISION`` unless it is there already (safe from every replica at
    once); raises when a migration fails."""
    path = _sqlite_file(url)
    if path is None or not _sqlite_at_head(path):
        from .migrate import bring_to_head

        bring_to_head(url, HEAD_REVISION)


def _sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///path`` URL; None for any other (SQLAlchemy reads those)."""
    prefix = "sqlite:///"
    name = url[len(prefix) :]
    if not url.startswith(prefix) or "?" in url or name in ("", ":memory:"):
        return None
    return Path(name)


def _sqlite_at_head(path: Path) -> bool:
    """True when the file is at ``HEAD_REVISION``, or had no table and now is; False leaves it to the migrations.
    Checked again under the write lock: another replica may have created it meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        use_wal(connection)  # as every engine's connection asks (engine.py)
        if _revision(connection) == HEAD_REVISION:
            return True
        connection.execute("BEGIN IMMEDIATE")
        try:
            if _has_table(connection, None):
                at_head = _revision(connection) == HEAD_REVISION
            else:
                for statement in SQLITE_SCHEMA:
                    connection.execute(statement)
                connection.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (HEAD_REVISION,))
                at_head = True
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return at_head
    finally:
        connection.close()


def _has_table(connection: sqlite3.Connection, name: str | None) -> bool:
    """Whether the database has the table ``name`` (any table at all for None)."""
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND (? IS NULL OR name = ?) LIMIT 1"
    return connection.execute(query, (name, name)).fetchone() is not None


def _revision(connection: sqlite3.Connection) -> str | None:
    if not _has_table(connection, "alembic_version"):
        return None
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])
