"""The event persister's SQLite inserts take their rows as parameters.

Prefect inserts a SQLite batch of events as one multi-row ``VALUES`` statement that SQLAlchemy
compiles anew for every batch; here it is the same insert with the rows as execution
parameters (compiled once and cached), the change Prefect made for PostgreSQL.

Upstream: https://github.com/PrefectHQ/prefect/issues/22960 (fixed for PostgreSQL by
https://github.com/PrefectHQ/prefect/pull/22961; the SQLite path is unchanged).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from prefect.server.database import db_injector
from prefect.server.events.storage import database as storage


def apply() -> None:
    """Replace the persister's SQLite writer (idempotent)."""
    if getattr(storage._write_sqlite_events, "_gorax_cached", False):
        return

    @db_injector
    async def _write_sqlite_events(db: Any, session: Any, events: Any) -> None:
        # Prefect's own steps (skip ids already stored, then events, then their resources),
        # each insert compiled once instead of per batch.
        for batch in storage._in_safe_batches(events):
            ids = {event.id for event in batch}
            existing = set((await session.scalars(sa.select(db.Event.id).where(db.Event.id.in_(ids)))).all())
            new = [event for event in batch if event.id not in existing]
            if not new:
                continue
            await session.execute(db.queries.insert(db.Event), [event.as_database_row() for event in new])
            resources = [row for event in new for row in event.as_database_resource_rows()]
            if resources:
                await session.execute(db.queries.insert(db.EventResource), resources)

    _write_sqlite_events._gorax_cached = True  # type: ignore[attr-defined]
    storage._write_sqlite_events = _write_sqlite_events
