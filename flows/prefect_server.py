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
way. Reads outside a transaction are untouched; PostgreSQL is untouched. Everything else is
Prefect's own command, arguments and settings.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager


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


def main() -> None:
    immediate_sqlite_transactions()
    from prefect.cli import app

    sys.argv = ["prefect", "server", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
