"""Alembic environment: runs on the connection handed over by :meth:`Database.migrate`."""

from __future__ import annotations

from alembic import context

import api.models  # noqa: F401 - registers the foundation tables on Base.metadata
from api.db.base import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run Gorax migrations through api.db.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
