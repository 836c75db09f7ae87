"""Service settings, read from ``MESHCTX_*`` environment variables so one image serves every cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
AuthMode = Literal["auto", "tokens", "disabled"]


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "meshctx"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MESHCTX_", extra="ignore")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1)] = 1
    log_level: LogLevel = "info"
    access_log: bool = True
    #: Request bodies above this many bytes get a 413 before they are parsed.
    max_body_bytes: Annotated[int, Field(ge=1)] = 1 << 20
    #: Largest world (``world_size``, or ``nnodes × nproc_per_node`` at the top of a range) a request may ask for.
    max_world_size: Annotated[int, Field(ge=1)] = 1 << 24
    #: Most node counts one elastic range ``MIN:MAX`` may span (each one is checked).
    max_nnodes_span: Annotated[int, Field(ge=1)] = 1024
    #: ``groups=true`` lists every rank once per axis; refuse it above this world size (use ``rank=N``).
    max_listed_world_size: Annotated[int, Field(ge=1)] = 1 << 17
    #: Most nodes a placement (``POST /v1/place``) or an imported topology may have.
    max_place_nodes: Annotated[int, Field(ge=1)] = 16384
    #: Longest topology text (Slurm ``topology.conf`` / ``topology.yaml``) ``POST /v1/topology/import`` reads.
    max_topology_text_bytes: Annotated[int, Field(ge=1)] = 1 << 20
    #: Seconds a placement or an import may run in the worker pool before the request gets a 503.
    place_deadline_s: Annotated[float, Field(gt=0)] = 10.0
    #: Serve HTTPS with this certificate (PEM; may hold the key too) and key; Kubernetes calls webhooks over HTTPS only.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

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
    data_dir: Path = Field(default_factory=_default_data_dir)
    #: ``postgresql+psycopg://…`` for several replicas; unset: the SQLite file under ``data_dir``.
    database_url: str | None = None
    #: Bearer tokens: a YAML/JSON file, or the JSON mapping itself (both may be given; they are merged).
    tokens_file: Path | None = None
    tokens: str | None = None
    #: ``auto``: tokens when any are configured, else no auth while bound to loopback, else refuse (401).
    #: ``tokens``: always require a token. ``disabled``: everyone is the ``local`` tenant's admin (development).
    auth: AuthMode = "auto"
    #: ``/v1/validate`` and ``/v1/layout`` answer without a token; ``false``: they need a read token.
    open_validate: bool = True
