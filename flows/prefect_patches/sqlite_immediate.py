"""Prefect's SQLite transactions begin ``IMMEDIATE`` instead of ``DEFERRED``.

A ``DEFERRED`` transaction that reads, then writes (creating a deployment's run, patching a
run's labels) cannot take the write lock once another connection committed after its read:
SQLite fails it at once with "database is locked" (its busy timeout does not apply to that
case), the API answers 503 and Prefect's client retries two seconds later. An ``IMMEDIATE`` one
takes the lock up front and waits for it (SQLite's busy timeout). Reads outside a transaction
and PostgreSQL are untouched.

Upstream: https://github.com/PrefectHQ/prefect/issues/18934 (SQLite "database is locked").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prefect.server.database.configurations import AioSqliteConfiguration


def apply() -> None:
    """Make Prefect's SQLite transactions begin ``IMMEDIATE`` (idempotent)."""
    if getattr(AioSqliteConfiguration.begin_transaction, "_gorax_immediate", False):
        return
    deferred = AioSqliteConfiguration.begin_transaction

    @asynccontextmanager
    async def begin_transaction(self: Any, session: Any, with_for_update: bool = False) -> AsyncIterator[Any]:
        # with_for_update is how Prefect itself asks for BEGIN IMMEDIATE on SQLite
        async with deferred(self, session, with_for_update=True) as transaction:
            yield transaction

    begin_transaction._gorax_immediate = True  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = begin_transaction  # type: ignore[method-assign]
