"""Transactions that keep a cluster from ever being oversubscribed, on one process or many.

Admitting a job is read-check-write: sum the GPUs of the cluster's active jobs, compare with its size,
insert. Two admissions interleaving between the read and the write would both pass the check. The fix has
to hold across threads, across service processes and across replicas, so it lives in the database:

- **PostgreSQL**: every write that admits a job (or resizes a cluster) first takes the cluster's row lock
  with ``SELECT ... FOR UPDATE``. Admissions to the same cluster therefore run one after the other, and under
  READ COMMITTED each statement after the lock sees everything committed before it, so the sum is exact.
  Admissions to different clusters, and all reads, do not wait. We prefer this to SERIALIZABLE isolation:
  it never aborts the common case, so there is nothing to retry, and the lock's scope is exactly the
  resource being shared.
- **SQLite** has no row locks; a write transaction is opened with ``BEGIN IMMEDIATE``, which takes the
  database's single write lock up front (waiting up to the busy timeout). The default ``BEGIN DEFERRED``
  would read under a shared lock and fail with SQLITE_BUSY on the upgrade to a write lock, or let two
  writers both check before either writes. Readers (WAL mode) never wait.

The only races left are two first-time inserts of the same name (caught by the unique constraints and
retried, which turns the loser into an idempotent repeat or an update) and, on PostgreSQL, deadlock or
serialization aborts, which are retried too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from .engine import SQLITE_BEGIN
from .errors import RegistryBusyError
from .models import Cluster

T = TypeVar("T")
H = TypeVar("H")
ATTEMPTS = 5
_RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}  # serialization failure, deadlock, unique violation


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def _retryable(err: DBAPIError) -> bool:
    sqlstate = getattr(err.orig, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    text = str(err.orig).lower()
    return "unique constraint failed" in text or "database is locked" in text


def _retried(begin: Callable[[], AbstractContextManager[H]], work: Callable[[H], T]) -> T:
    """``work`` in the transaction ``begin()`` opens; run again whole after a lost insert race, deadlock or
    serialization abort, ``RegistryBusyError`` when the database stays locked."""
    for attempt in range(ATTEMPTS):
        try:
            with begin() as handle:
                return work(handle)
        except (IntegrityError, OperationalError) as err:
            if not _retryable(err) or attempt == ATTEMPTS - 1:
                if isinstance(err, OperationalError) and _retryable(err):
                    raise RegistryBusyError(f"The registry database stayed busy: {err.orig}") from err
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


@contextmanager
def _write_session(bind: Engine) -> Iterator[Session]:
    with Session(bind, expire_on_commit=False) as session, session.begin():
        yield session


def run_write(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one write transaction (``BEGIN IMMEDIATE`` on SQLite); commit, or retry it whole
    after a lost insert race, deadlock or serialization abort. Registry errors raised by ``work`` roll back."""
    bind = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
    return _retried(lambda: _write_session(bind), work)


def run_write_core(engine: Engine, work: Callable[[Connection], T]) -> T:
    """``run_write`` for SQLAlchemy Core: ``work`` gets the transaction's connection (no ORM session, no unit of
    work: the register hot path, heartbeats and state changes are a few statements each)."""
    bind = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
    return _retried(bind.begin, work)


def lock_cluster(session: Session, tenant: str, name: str) -> Cluster | None:
    """The cluster row, locked until the transaction ends (PostgreSQL; SQLite already holds the write lock)."""
    return session.scalars(
        select(Cluster).where(Cluster.tenant == tenant, Cluster.name == name).with_for_update()
    ).one_or_none()
