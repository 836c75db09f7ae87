"""Service settings, read from ``MESHCTX_*`` environment variables so one image serves every cluster.

``Settings()`` checks at start-up what would otherwise fail later inside uvicorn with a traceback: the TLS
files, the token file, and a writable data directory for the embedded registry. Any problem is a
``SettingsError`` (a ``ValueError``: ``meshctx serve`` exits 2) naming each ``MESHCTX_*`` setting.
"""

from __future__ import annotations

import contextlib
import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshctx.integrations.limits import (
    DEFAULT_MAX_LISTED_WORLD_SIZE,
    DEFAULT_MAX_NNODES_SPAN,
    DEFAULT_MAX_WORLD_SIZE,
    Limits,
)

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
AuthMode = Literal["auto", "tokens", "disabled"]


def data_dir_candidates() -> list[Path]:
    """Where the registry may live without ``MESHCTX_DATA_DIR``, in order: systemd's ``StateDirectory=``,
    ``$XDG_DATA_HOME/meshctx``, ``~/.local/share/meshctx`` (when there is a home at all)."""
    out = []
    if os.environ.get("STATE_DIRECTORY"):
        out.append(Path(os.environ["STATE_DIRECTORY"].split(":")[0]))
    if os.environ.get("XDG_DATA_HOME"):
        out.append(Path(os.environ["XDG_DATA_HOME"]) / "meshctx")
    with contextlib.suppress(RuntimeError):  # no $HOME and no passwd entry (a container's arbitrary uid)
        out.append(Path.home() / ".local" / "share" / "meshctx")
    return out


def _unusable(path: Path) -> str | None:
    """Why ``path`` cannot hold the registry (it is created if missing), or ``None``."""
    try:
        path.expanduser().mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return err.strerror or str(err)
    if not os.access(path.expanduser(), os.W_OK | os.X_OK):
        return "not writable"
    return None


class SettingsError(ValueError):
    """Settings the service cannot start with; one line per problem, each naming its ``MESHCTX_*`` variable."""


class Settings(BaseSettings):
    # hide_input_in_errors: a failed check must never echo the environment (it may hold $MESHCTX_TOKENS).
    model_config = SettingsConfigDict(
        env_prefix="MESHCTX_", extra="ignore", env_ignore_empty=True, hide_input_in_errors=True
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise SettingsError(_explain(error)) from None

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1)] = 1
    log_level: LogLevel = "info"
    access_log: bool = True
    #: Request bodies above this many bytes get a 413 before they are parsed.
    max_body_bytes: Annotated[int, Field(ge=1)] = 1 << 20
    #: Largest world (``world_size``, or ``nnodes × nproc_per_node`` at the top of a range) a request may ask for.
    max_world_size: Annotated[int, Field(ge=1)] = DEFAULT_MAX_WORLD_SIZE
    #: Most node counts one elastic range ``MIN:MAX`` may span (each one is checked).
    max_nnodes_span: Annotated[int, Field(ge=1)] = DEFAULT_MAX_NNODES_SPAN
    #: A webhook or SkyPilot policy check still planning after this many seconds is answered without it
    #: (below the webhook's ``timeoutSeconds``, after which the API server would decide alone).
    check_deadline_s: Annotated[float, Field(gt=0)] = 3.0
    #: ``groups=true`` lists every rank once per axis; refuse it above this world size (use ``rank=N``).
    max_listed_world_size: Annotated[int, Field(ge=1)] = DEFAULT_MAX_LISTED_WORLD_SIZE
    #: Planning that may take more than a millisecond runs on this many threads, off the event loop. One by
    #: default: planning is pure Python, so under the GIL a second thread adds no throughput, and the event loop
    #: wins the GIL back far later from two busy threads than from one (``/livez`` p99 under the largest
    #: requests 25–26 ms with two, 8–12 ms with one: docs/benchmarks.md).
    work_threads: Annotated[int, Field(ge=1, le=64)] = 1
    #: Requests that may wait for a planning thread; more get 503 + Retry-After at once.
    work_queue: Annotated[int, Field(ge=0)] = 32
    #: A request waiting for or running on a planning thread longer than this gets 503 + Retry-After.
    work_deadline_s: Annotated[float, Field(gt=0)] = 10.0
    #: Kubernetes admission and the SkyPilot policy plan on threads of their own, which no other route can take
    #: (a slow ``/v1/place`` never makes the gate answer "not checked"); this many, with this queue.
    admission_threads: Annotated[int, Field(ge=1, le=16)] = 1
    admission_queue: Annotated[int, Field(ge=0)] = 64
    #: An opted-in workload meshctx could not check (deadline, saturation, a world size only known at run time):
    #: ``deny`` (default: the gate stays shut and says why) or ``allow`` (admitted with a warning; logged, counted).
    admission_unchecked: Literal["deny", "allow"] = "deny"
    #: HTTP limits (``http/protocol.py``): a request line and headers longer than this get a 431...
    max_header_bytes: Annotated[int, Field(ge=1024)] = 1 << 16
    #: ...a connection that has not sent a whole request head this many seconds after it opened (or after its
    #: last answer) is closed...
    header_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    #: ...and past this many open connections a new one closes an idle one (per worker).
    max_connections: Annotated[int, Field(ge=1)] = 1024
    #: The speed tricks (``http/fast_paths.py``: validate's direct path, one write per loop turn); ``off``: plain
    #: FastAPI dispatch and uvicorn's own writes, the same answers (e.g. after a FastAPI or uvicorn upgrade).
    fast_paths: bool = True
    #: Most nodes a placement (``POST /v1/place``) or an imported topology may have.
    max_place_nodes: Annotated[int, Field(ge=1)] = 16384
    #: Longest topology text (Slurm ``topology.conf`` / ``topology.yaml``) ``POST /v1/topology/import`` reads.
    max_topology_text_bytes: Annotated[int, Field(ge=1)] = 1 << 20
    #: Largest ``POST /v1/place`` body (other routes: ``max_body_bytes``): a 16,384-node topology is 2.2–2.5 MB.
    max_place_body_bytes: Annotated[int, Field(ge=1)] = 4 << 20
    #: Serve HTTPS with this certificate (PEM; may hold the key too) and key; Kubernetes calls webhooks over HTTPS only.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    @cached_property
    def limits(self) -> Limits:
        """The one ``Limits`` every planning route applies (made once: it is read on every request)."""
        return Limits(
            max_world_size=self.max_world_size,
            max_nnodes_span=self.max_nnodes_span,
            max_listed_world_size=self.max_listed_world_size,
        )

    @model_validator(mode="after")
    def _tls_files_exist(self) -> Settings:
        """Refuse a half or broken TLS setup at start-up rather than serving plain HTTP or crashing in uvicorn."""
        if self.tls_key_file and not self.tls_cert_file:
            raise ValueError("MESHCTX_TLS_KEY_FILE is set without MESHCTX_TLS_CERT_FILE")
        for name in ("tls_cert_file", "tls_key_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ValueError(f"MESHCTX_{name.upper()} {path!r} is not a file")
        return self

    # -- registry (docs/registry.md) ----------------------------------------------------------------------
    #: Where the embedded SQLite registry lives (``<data_dir>/meshctx.db``) when no database URL is given.
    data_dir: Path = Field(default_factory=lambda: (data_dir_candidates() or [Path("meshctx")])[0])
    #: ``postgresql+psycopg://…`` for several replicas; unset: the SQLite file under ``data_dir``.
    database_url: str | None = None
    #: Bearer tokens: a YAML/JSON file, or the JSON mapping itself (both may be given; they are merged).
    tokens_file: Path | None = None
    tokens: str | None = None
    #: ``auto``: tokens when any are configured, else no auth while bound to loopback, else refuse (401).
    #: ``tokens``: always require a token. ``disabled``: everyone is the ``local`` tenant's admin (development).
    auth: AuthMode = "auto"
    #: ``/v1/validate``, ``/v1/layout`` and ``/v1/render/*`` answer without a token; ``false``: they need a read token.
    open_validate: bool = True
    #: A registered job's lease when its registration names none: not heard from (heartbeat, attestation) for this
    #: many seconds, it is ``lost`` and frees its GPUs and nodes. 0: jobs hold until told otherwise.
    job_lease_s: Annotated[int, Field(ge=0, le=30 * 24 * 3600)] = 600
    #: The admission webhook registers the workloads it admits (keyed by UID; integrations/admission_register.py).
    admission_register: bool = False
    #: Namespace → tenant of those registrations (JSON; ``"*"``: every other namespace).
    admission_tenants: dict[str, str] | None = None
    #: The registered cluster those registrations hold GPUs on (unset: on no cluster).
    admission_cluster: str | None = None

    @model_validator(mode="after")
    def _data_dir_usable(self) -> Settings:
        """The embedded registry needs a writable directory: ``MESHCTX_DATA_DIR`` if set (no fallback: the
        operator chose it), else the first usable of ``data_dir_candidates()``."""
        if self.database_url:
            return self
        if "data_dir" in self.model_fields_set:
            problem = _unusable(self.data_dir)
            if problem is not None:
                raise ValueError(
                    f"MESHCTX_DATA_DIR {self.data_dir}: {problem}; point it at a writable directory, or set "
                    "MESHCTX_DATABASE_URL"
                )
            return self
        tried = []
        for candidate in data_dir_candidates():
            problem = _unusable(candidate)
            if problem is None:
                self.data_dir = candidate
                return self
            tried.append(f"{candidate} ({problem})")
        raise ValueError(
            "no writable directory for the embedded registry"
            + (f" (tried {'; '.join(tried)})" if tried else " (no home directory)")
            + "; set MESHCTX_DATA_DIR to a writable directory, or MESHCTX_DATABASE_URL"
        )

    @model_validator(mode="after")
    def _tokens_readable(self) -> Settings:
        """A bad token file stops start-up here, naming the file and line, not in the app factory."""
        from .auth.tokens import TokenConfigError, TokenStore  # the auth package imports this module

        sources = {"MESHCTX_TOKENS_FILE": lambda: TokenStore.from_file(self.tokens_file) if self.tokens_file else None}
        sources["MESHCTX_TOKENS"] = lambda: TokenStore.from_env("MESHCTX_TOKENS", {"MESHCTX_TOKENS": self.tokens or ""})
        for setting, load in sources.items():
            try:
                load()
            except TokenConfigError as error:
                raise ValueError(f"{setting}: {error}") from None
        return self


def _explain(error: ValidationError) -> str:
    """``MESHCTX_PORT: Input should be a valid integer`` per problem (validators' messages name their settings)."""
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        message = str(problem["msg"]).removeprefix("Value error, ")
        loc = problem["loc"]
        lines.append(f"MESHCTX_{str(loc[0]).upper()}: {message}" if loc else message)
    return "invalid settings:\n  " + "\n  ".join(lines)
