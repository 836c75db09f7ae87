"""The topology registry: clusters and jobs (validated plans, capacity, state, attestations) per tenant.

``Registry`` (the store), ``upgrade_database`` and ``upgrade_engine`` load SQLAlchemy, so they are imported on
first use (``__getattr__``): the service starts without them (``lazy.py``, ``schema.py``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from meshctx.job_states import JobState

from .engine import default_database_url, make_engine
from .errors import (
    CapacityError,
    ClusterInUseError,
    ConflictError,
    FingerprintMismatchError,
    IllegalTransitionError,
    InvalidInputError,
    InvalidTopologyError,
    JobExistsError,
    JobNotUpdatableError,
    NotFoundError,
    PreconditionFailedError,
    RegistryBusyError,
    RegistryError,
)
from .lazy import LazyRegistry
from .records import AttestationRecord, ClusterRecord, JobRecord, Page, Registration
from .schema import ensure_schema

if TYPE_CHECKING:
    from .migrate import upgrade_database, upgrade_engine
    from .store import Registry

#: Names loaded on first use, and the module each comes from.
_ON_FIRST_USE = {"Registry": ".store", "upgrade_database": ".migrate", "upgrade_engine": ".migrate"}

__all__ = [
    "AttestationRecord",
    "CapacityError",
    "ClusterInUseError",
    "ClusterRecord",
    "ConflictError",
    "FingerprintMismatchError",
    "IllegalTransitionError",
    "InvalidInputError",
    "InvalidTopologyError",
    "JobExistsError",
    "JobNotUpdatableError",
    "JobRecord",
    "JobState",
    "LazyRegistry",
    "NotFoundError",
    "Page",
    "PreconditionFailedError",
    "Registration",
    "Registry",
    "RegistryBusyError",
    "RegistryError",
    "default_database_url",
    "ensure_schema",
    "make_engine",
    "upgrade_database",
    "upgrade_engine",
]


def __getattr__(name: str) -> Any:
    if name not in _ON_FIRST_USE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_ON_FIRST_USE[name], __name__), name)
    globals()[name] = value
    return value
