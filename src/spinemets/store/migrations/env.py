"""Alembic environment: runs on the connection handed over by ``Store.upgrade`` (online mode only)."""

from __future__ import annotations

from alembic import context

from spinemets.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline SQL generation is not supported
    raise RuntimeError("spinemets migrations run through `spinemets db upgrade` (Store.upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    transactional_ddl=True,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
