"""The topology registry: clusters and jobs (validated plans, capacity, state, attestations) per tenant."""

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
from .migrate import ensure_schema, upgrade_database, upgrade_engine
from .records import AttestationRecord, ClusterRecord, JobRecord, Page, Registration
from .store import Registry

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
