"""``python -m flows.prefect_server start ...``: Prefect's own ``prefect server`` command, with
SQLite transactions that wait for the write lock instead of failing.

Prefect begins its SQLite transactions ``DEFERRED``. One that reads and then writes (creating a
deployment's run, which is what an automation's RunDeployment does; patching a run's labels, which
a worker does as it starts a run) cannot take the write lock if another connection committed since
its read: SQLite fails it at once with "database is locked" (its busy timeout does not apply to
that case), the API answers 503 and Prefect's client retries two seconds later. On the embedded
SQLite server, busy with the event persister and the task-run recorder, that was most of the
trigger latency's tail (a webhook's run created after 2.2-4.5 s instead of 0.2-0.5 s).

Here every transaction Prefect opens on SQLite begins ``IMMEDIATE``: it takes the write lock up
front, so a conflicting one waits for the lock (SQLite's busy timeout, 60 s) and never fails half
way. Reads outside a transaction are untouched; PostgreSQL is untouched.

Three changes of cost, not of behaviour, to how the server digests events (each event of a task
run, a state change or a webhook delivery passes through them; measured on this project's
machine, the first two together a fifth of the server's CPU per event):

* the in-memory broker hands each subscriber (event persister, triggers, task-run recorder,
  stream, ...) its own copy of a message with ``copy.deepcopy``; the payload is immutable bytes,
  so a new message with its own attributes dict is the same isolation
  (:func:`shallow_message_copies`);
* the event persister inserts a SQLite batch as one multi-row ``VALUES`` statement, which
  SQLAlchemy compiles anew for every batch; here it is the same insert with the rows as
  parameters (compiled once and cached), as Prefect already does on PostgreSQL
  (:func:`cached_sqlite_event_inserts`).
* the task-run recorder decodes every event (a webhook delivery, a flow run's state change) to
  read its name and drop all but ``prefect.task-run.*``; here it reads the name from the
  message's attributes, where Prefect's publisher puts it, before decoding
  (:func:`task_run_events_to_the_recorder`). Not SQLite-specific.

Its log lines are capped like every Gorax process's (:mod:`flows.logcap`). Everything else is
Prefect's own command, arguments and settings.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager

from flows.logcap import install_line_cap
from flows.settings import get_settings


def immediate_sqlite_transactions() -> None:
    """Make Prefect's SQLite transactions begin ``IMMEDIATE`` (idempotent)."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    if getattr(AioSqliteConfiguration.begin_transaction, "_gorax_immediate", False):
        return
    deferred = AioSqliteConfiguration.begin_transaction

    @asynccontextmanager
    async def begin_transaction(self, session, with_for_update: bool = False):
        # with_for_update is how Prefect itself asks for BEGIN IMMEDIATE on SQLite
        async with deferred(self, session, with_for_update=True) as transaction:
            yield transaction

    begin_transaction._gorax_immediate = True  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = begin_transaction  # type: ignore[method-assign]


def shallow_message_copies() -> None:
    """Each subscriber of an in-memory topic gets its own message without a deep copy (idempotent)."""
    import copy

    from prefect.server.utilities.messaging import memory

    if getattr(memory.Topic.publish, "_gorax_shallow", False):
        return

    def own_copy(message: "memory.MemoryMessage") -> "memory.MemoryMessage":
        attributes = message.attributes
        if attributes is not None and not all(type(v) is str for v in attributes.values()):
            attributes = copy.deepcopy(attributes)
        elif attributes is not None:
            attributes = dict(attributes)
        # data is bytes or str (immutable); retry_count is the subscriber's own
        return memory.MemoryMessage(message.data, attributes, message.retry_count)

    async def publish(self, message):
        for subscription in self._subscriptions:
            await subscription.deliver(own_copy(message))

    publish._gorax_shallow = True  # type: ignore[attr-defined]
    memory.Topic.publish = publish  # type: ignore[method-assign]


def cached_sqlite_event_inserts() -> None:
    """The event persister's SQLite inserts take their rows as parameters (idempotent)."""
    import sqlalchemy as sa
    from prefect.server.database import db_injector
    from prefect.server.events.storage import database as storage

    if getattr(storage._write_sqlite_events, "_gorax_cached", False):
        return

    @db_injector
    async def _write_sqlite_events(db, session, events) -> None:
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


def task_run_events_to_the_recorder() -> None:
    """The task-run recorder skips events that are not of task runs before decoding them
    (idempotent)."""
    from prefect.server.services import task_run_recorder as recorder

    if getattr(recorder.consumer, "_gorax_filtered", False):
        return
    original = recorder.consumer

    @asynccontextmanager
    async def consumer(*args, **kwargs):
        async with original(*args, **kwargs) as handler:
            async def message_handler(message):
                # Prefect's handler decodes every event, then drops all but prefect.task-run.*;
                # the publisher puts the event's name in the message's attributes.
                name = (message.attributes or {}).get("event")
                if isinstance(name, str) and not name.startswith("prefect.task-run"):
                    return
                await handler(message)

            yield message_handler

    consumer._gorax_filtered = True  # type: ignore[attr-defined]
    recorder.consumer = consumer


def main() -> None:
    install_line_cap(get_settings().log_max_line_bytes)
    immediate_sqlite_transactions()
    shallow_message_copies()
    cached_sqlite_event_inserts()
    task_run_events_to_the_recorder()
    from prefect.cli import app

    sys.argv = ["prefect", "server", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
