"""Typed registry errors. Each names the HTTP status it maps to and carries the facts a client needs.

They are ``ServiceError``s, so the service's one handler turns any of them into problem+json (``type`` from
``code``, ``detail`` from ``str(err)``, extra members from ``extras()``); the registry itself never answers HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..http.errors import ServiceError, field_errors, join_fields


class RegistryError(ServiceError):
    status = 500
    code = "registry_error"


class InvalidInputError(RegistryError):
    """Malformed identifiers, labels or cursors: every bad field at once, as ``errors[{field, detail}]``."""

    status = 422
    code = "invalid_input"

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors = field_errors(errors)
        super().__init__(join_fields(errors))

    def extras(self) -> dict[str, object]:
        return {"errors": self.errors}


class InvalidTopologyError(RegistryError):
    """The planner (or the cluster's shape) rejects the topology; nothing was stored."""

    status = 422
    code = "invalid_topology"

    def __init__(self, problems: list[dict[str, object]], report: dict[str, object] | None = None) -> None:
        self.problems = problems
        self.report = report or {"valid": False, "problems": problems, "warnings": [], "suggestions": []}
        super().__init__("; ".join(str(p["message"]) for p in problems))

    def extras(self) -> dict[str, object]:
        return {
            "problems": self.problems,
            "warnings": self.report.get("warnings", []),
            "suggestions": self.report.get("suggestions", []),
        }


class NotFoundError(RegistryError):
    """Absent, or owned by another tenant: the two are indistinguishable on purpose."""

    status = 404
    code = "not_found"

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        super().__init__(f"No {kind} named {name!r}.")


class ConflictError(RegistryError):
    status = 409
    code = "conflict"


class JobExistsError(ConflictError):
    """A PUT with a different body on an existing job and no ``If-Match``."""

    code = "job_exists"

    def __init__(self, job_id: str, etag: str) -> None:
        self.job_id, self.etag = job_id, etag
        super().__init__(
            f"Job {job_id!r} is already registered with a different body. To replace it, repeat the request "
            f"with If-Match: {etag}."
        )

    def extras(self) -> dict[str, object]:
        return {"etag": self.etag}


class PreconditionFailedError(ConflictError):
    """``If-Match`` names a version that is not the current one (someone else changed it first)."""

    status = 412
    code = "precondition_failed"

    def __init__(self, kind: str, name: str, expected: str, current: str | None) -> None:
        self.expected, self.current = expected, current
        now = f"its current ETag is {current}" if current else f"the {kind} does not exist"
        super().__init__(f"If-Match {expected} does not match {kind} {name!r}: {now}. Fetch it again and retry.")

    def extras(self) -> dict[str, object]:
        return {"etag": self.current}


class IllegalTransitionError(ConflictError):
    code = "illegal_transition"

    def __init__(self, job_id: str, current: str, requested: str, allowed: Sequence[str]) -> None:
        self.current, self.requested, self.allowed = current, requested, list(allowed)
        options = ", ".join(allowed) if allowed else "none (it is final)"
        super().__init__(f"Job {job_id!r} is {current}; it cannot become {requested}. Allowed next states: {options}.")

    def extras(self) -> dict[str, object]:
        return {"state": self.current, "requested": self.requested, "allowed": self.allowed}


class JobNotUpdatableError(ConflictError):
    code = "job_not_updatable"

    def __init__(self, job_id: str, state: str) -> None:
        self.state = state
        super().__init__(
            f"Job {job_id!r} is {state}; only a registered job's topology can be replaced. "
            f"Register the new topology under a new job id."
        )


class CapacityError(ConflictError):
    """Registering would oversubscribe the cluster: GPUs held by its active jobs + this job > its GPUs."""

    code = "capacity_exceeded"

    def __init__(self, cluster: str, capacity: int, held: int, requested: int) -> None:
        self.cluster, self.capacity, self.held, self.requested = cluster, capacity, held, requested
        self.available = capacity - held
        smaller = f", or use a world size of at most {self.available}" if self.available > 0 else ""
        super().__init__(
            f"Cluster {cluster!r} has {capacity} GPUs; its active jobs hold {held}, so {self.available} are free "
            f"and this job needs {requested}. Wait for a job to finish or use another cluster{smaller}."
        )

    def extras(self) -> dict[str, object]:
        return {
            "cluster": self.cluster,
            "capacity": self.capacity,
            "held": self.held,
            "requested": self.requested,
            "available": self.available,
        }


class ClusterInUseError(ConflictError):
    """Deleting or reshaping a cluster that active jobs are planned on."""

    code = "cluster_in_use"

    def __init__(self, cluster: str, active_jobs: int, held: int, change: str) -> None:
        self.cluster, self.active_jobs, self.held = cluster, active_jobs, held
        super().__init__(
            f"Cannot {change} cluster {cluster!r}: its {active_jobs} active job(s) hold {held} GPUs and were "
            f"planned on its current shape. Finish, fail or delete them first."
        )

    def extras(self) -> dict[str, object]:
        return {"cluster": self.cluster, "active_jobs": self.active_jobs, "held": self.held}


class FingerprintMismatchError(ConflictError):
    """The job built a different mesh than the one registered. The attestation is recorded anyway."""

    code = "fingerprint_mismatch"

    def __init__(self, job_id: str, expected: str, reported: str) -> None:
        self.expected, self.reported = expected, reported
        super().__init__(
            f"Job {job_id!r} built a mesh with fingerprint {reported}, but its registered plan has {expected}. "
            f"The job's sizes, world size or rank order differ from the registration; fix the launch or "
            f"re-register the topology it actually uses."
        )

    def extras(self) -> dict[str, object]:
        return {"expected": self.expected, "reported": self.reported}


class RegistryBusyError(RegistryError):
    """The database stayed locked (or kept aborting our transaction) past every retry."""

    status = 503
    code = "registry_busy"

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": "1"}


class InvalidPlacementError(InvalidTopologyError):
    """The job's allocation (``nodes``) does not fit its cluster's topology or its plan; nothing was stored."""

    code = "invalid_placement"

    def __init__(self, problems: list[dict[str, object]]) -> None:
        super().__init__(problems)
        self.args = ("nodes: " + "; ".join(str(p["message"]) for p in problems),)


class NodesInUseError(ConflictError):
    """The job's ``nodes`` overlap the nodes of active jobs on the same cluster."""

    code = "nodes_in_use"

    def __init__(self, cluster: str, held: Sequence[tuple[str, str]]) -> None:
        self.cluster = cluster
        self.hosts = sorted({host for host, _ in held})
        by_job: dict[str, list[str]] = {}
        for host, job in held:
            by_job.setdefault(job, []).append(host)
        self.jobs = {job: sorted(hosts) for job, hosts in sorted(by_job.items())}
        shown = "; ".join(
            f"{job} holds {', '.join(hosts[:8])}" + (f", … ({len(hosts)} in all)" if len(hosts) > 8 else "")
            for job, hosts in list(self.jobs.items())[:8]
        )
        super().__init__(
            f"{len(self.hosts)} of the job's nodes on cluster {cluster!r} are held by active jobs: {shown}. "
            f"Allocate other nodes, or end those jobs first (finished, failed, or lost when their lease runs out)."
        )

    def extras(self) -> dict[str, object]:
        return {"cluster": self.cluster, "hosts": self.hosts, "jobs": self.jobs}


class JobEndedError(ConflictError):
    """A heartbeat or attestation for a job that has ended (finished, failed, or lost when its lease ran out)."""

    code = "job_ended"

    def __init__(self, job_id: str, state: str) -> None:
        self.state = state
        why = " (its lease ran out before a heartbeat renewed it)" if state == "lost" else ""
        super().__init__(
            f"Job {job_id!r} is {state}{why}; it holds nothing and cannot be renewed. Register the job again "
            f"under a new job id."
        )

    def extras(self) -> dict[str, object]:
        return {"state": self.state}
