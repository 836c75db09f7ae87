"""Alembic environment for the registry. Run through ``meshctx_service.registry.migrate.upgrade_engine``, which
hands over an open connection already inside a transaction that serializes concurrent upgrades."""

from __future__ import annotations

from alembic import context

from meshctx_service.registry.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations with registry.migrate.upgrade_database (or `meshctx db upgrade`).")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
