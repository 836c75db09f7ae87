"""Service settings, read from ``MESHCTX_*`` environment variables so one image serves every cluster."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


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
