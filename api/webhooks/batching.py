"""Group commit for deliveries: many concurrent requests, one transaction (one fsync) per batch.

Each delivery must be committed before its 202. One transaction per request makes the database's
commit (on SQLite an fsync of the write-ahead log) the ceiling of the receiver: a few hundred a
second however fast the rest is. Here a request hands its row to the writer of its database and
waits; the writer commits whatever has queued up meanwhile in one transaction per tenant and
then answers every waiting request. With one request in flight nothing waits (the batch is that
one row); under load, batches grow and commits per request shrink.

A batch that breaks a constraint (a duplicate delivery id) is rolled back and its rows are
committed one by one, so every request gets its own outcome: stored, or the IntegrityError it
would have had alone. Nothing is acknowledged before it is committed.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy.exc import IntegrityError

from api.db.engine import Database

#: Most rows in one transaction.
MAX_BATCH = 500


class DeliveryWriter:
    """Commits rows of one database in batches; :meth:`store` returns once its row is committed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: list[tuple[Any, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0
        self.rows = 0

    async def store(self, row: Any) -> None:
        """Commit ``row`` (a new ORM object with ``tenant_id``); raises what its commit raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((row, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        await asyncio.shield(future)  # a cancelled request does not cancel its row's commit

    async def _flush_all(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            by_tenant: dict[str, list[tuple[Any, asyncio.Future[None]]]] = {}
            for item in batch:
                by_tenant.setdefault(item[0].tenant_id, []).append(item)
            for tenant_id, items in by_tenant.items():
                await self._commit(tenant_id, items)

    async def _commit(self, tenant_id: str, items: list[tuple[Any, asyncio.Future[None]]]) -> None:
        try:
            async with self.db.tenant_scope(tenant_id=tenant_id) as session:
                session.add_all([row for row, _ in items])
                await session.commit()
        except IntegrityError as exc:
            if len(items) == 1:
                _settle(items[0][1], exc)
                return
            for row, future in items:  # one by one: each gets its own answer
                fresh = _fresh(row)
                await self._commit(tenant_id, [(fresh, future)])
                if future.done() and future.exception() is None:
                    row.seq = fresh.seq  # the caller's object names the stored row
            return
        except BaseException as exc:  # noqa: BLE001 - every waiting request hears of it
            for _, future in items:
                _settle(future, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.rows += len(items)
        for _, future in items:
            _settle(future, None)


def _fresh(row: Any) -> Any:
    """A new transient copy of ``row``: after a failed batch the database numbers it again."""
    from sqlalchemy import inspect

    mapper = inspect(row).mapper
    values = {attr.key: getattr(row, attr.key) for attr in mapper.column_attrs if attr.key != "seq"}
    return type(row)(**values)


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


_writers: "weakref.WeakKeyDictionary[Database, DeliveryWriter]" = weakref.WeakKeyDictionary()


def writer_for(db: Database) -> DeliveryWriter:
    """The writer of ``db`` (one per database object, created on first use)."""
    writer = _writers.get(db)
    if writer is None:
        writer = _writers[db] = DeliveryWriter(db)
    return writer
