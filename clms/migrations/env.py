"""Alembic environment: runs against the engine of the CLMS application that invoked it."""

from __future__ import annotations

from alembic import context

from clms import models  # noqa: F401  (registers every table on Base.metadata)
from clms.db import Base
from clms.migrate import include_object

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when alembic is run by hand
    raise SystemExit("Run migrations through `clms init` (or clms.migrate.upgrade).")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
