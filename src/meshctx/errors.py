"""Every error meshctx raises on purpose, in one tree under ``MeshctxError`` (so ``except MeshctxError`` catches
them all). The classes that need nothing but the standard library are defined here; the rest are defined beside
the values they carry and named below with their module. Errors of bad input are also ``ValueError``s.

    MeshctxError
    ├── FieldErrors (ValueError)          input that cannot be used: a (field, detail) pair for every problem
    │   ├── AdmissionReviewError          a body that is no AdmissionReview (meshctx.integrations.kubernetes_admission)
    │   ├── LaunchError                   launch settings a render target cannot express (meshctx.launch.spec)
    │   ├── LaunchEnvError                a job's MESHCTX_* environment (meshctx.runtime.job_env)
    │   └── RecipeError                   a recipe's distributed: section (meshctx.recipe)
    ├── FieldProblem (ValueError)         one unreadable annotation or env value (read by meshctx.integrations)
    ├── TaskRejected (ValueError)         a SkyPilot task the admin policy refuses (meshctx.integrations)
    ├── CommandTooLong (ValueError)       a Pod's command over its bound once $(VAR) expands (meshctx.integrations)
    ├── TopologyError (ValueError)        every problem of a topology that cannot be built (meshctx.plan.problems)
    │   ├── PlacementError                an allocation or topology placement refuses (meshctx.place.problems)
    │   └── MeshBuildError                a mesh NeMo would build wrong (meshctx.runtime.nemo_rules)
    │       └── MeshBuildRuntimeError (RuntimeError)
    ├── MissingExtra (ModuleNotFoundError) an optional dependency is not installed; names the extra
    ├── ClientError                       meshctx.client got no usable answer from the service
    │   ├── ServiceUnreachable            no answer after every retry
    │   └── ProblemError                  the service refused the request (its problem+json body)
    ├── UsageError                        bad command-line input: exit status 2 (meshctx.cli.common)
    └── ServerFailed                      --server could not be reached or failed: exit status 3 (meshctx.cli.common)

``tests/plan/test_library_error_tree.py`` keeps this picture complete: every exception class of the library is in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class MeshctxError(Exception):
    """Base class of every error meshctx raises on purpose."""


class FieldErrors(MeshctxError, ValueError):
    """Input that cannot be used; ``errors`` holds a ``(field, detail)`` pair for every problem."""

    def __init__(self, errors: Iterable[tuple[str, str]]) -> None:
        self.errors: list[tuple[str, str]] = list(errors)
        super().__init__(self.describe())

    def describe(self) -> str:
        return "; ".join(f"{field}: {detail}" for field, detail in self.errors)


class FieldProblem(MeshctxError, ValueError):
    """One unreadable value, named by the field (annotation, env, spec path) it was read from."""

    def __init__(self, name: str, detail: str) -> None:
        self.name, self.detail = name, detail
        super().__init__(f"{name} {detail}")


class TaskRejected(MeshctxError, ValueError):
    """The task is refused; the message (every reason, each naming its field) is what SkyPilot shows the user."""


class ClientError(MeshctxError):
    """``meshctx.client`` got no usable answer from the service: the base of the client's own errors."""


class ServiceUnreachable(ClientError):
    """No answer after every retry (connection refused, reset or timed out)."""


class ProblemError(ClientError):
    """The service refused the request; ``problem`` is its ``application/problem+json`` body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        super().__init__(f"{status}: {problem.get('detail') or problem.get('title') or 'error'}")


class MissingExtra(MeshctxError, ModuleNotFoundError):
    """An optional dependency is not installed: the message names the extra that brings it
    (``pip install meshctx`` has no dependencies; ``[torch]``, ``[client]`` and ``[service]`` add them)."""

    def __init__(self, what: str, module: str, extra: str) -> None:
        super().__init__(f"{what} needs {module}: pip install 'meshctx[{extra}]'", name=module)
        self.extra = extra


def require(module: str, extra: str, what: str) -> None:
    """Raise ``MissingExtra`` unless ``module`` can be imported (checked before the real, lazy import)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtra(what, module, extra)
