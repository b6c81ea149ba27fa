"""Group commit for deliveries: many concurrent requests, one transaction (one fsync) per batch.

Each delivery must be committed before its 202. One transaction per request makes the database's
commit (on SQLite an fsync of the write-ahead log) the ceiling of the receiver: a few hundred a
second however fast the rest is. Here a request hands its row to the writer of its database and
waits; the writer commits whatever has queued up meanwhile in one transaction per tenant and
then answers every waiting request. With one request in flight nothing waits (the batch is that
one row); under load, batches grow and commits per request shrink. Rows go in as one
multi-row ``INSERT`` (SQLAlchemy Core), not one ORM flush per object.

On SQLite the writer is a thread with its own connection (:class:`SqliteDeliveryWriter`): a batch
is one call there instead of several trips through a busy event loop (each one a loop turn:
~15 ms a batch under load), and the dispatcher's updates of the same table go through it too
(:meth:`SqliteDeliveryWriter.execute`), so the receiver never sleeps in SQLite's busy handler
waiting for the dispatcher's lock. On PostgreSQL it is a task on the event loop.

The transaction also re-reads the webhooks its rows were checked against (one query per batch,
after the insert, so the rows and the check commit together) and the change stamps of their
signing secrets (:mod:`api.webhooks.credential_stamps`, a second query when any row was
signed): a row whose webhook changed since the request read it (token rotated, config
republished, deactivated, workflow paused or archived), or whose secret was changed, is taken
out again before the commit and its request hears :class:`StaleWebhook`, so a cached webhook or
secret can never let a delivery in that the current one would refuse.

A batch that breaks a constraint (a duplicate delivery id) is rolled back and its rows are
committed one by one, so every request gets its own outcome: stored, or the IntegrityError it
would have had alone. Nothing is acknowledged before it is committed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError

from api.db.engine import Database
from api.errors import Unavailable
from api.models.workflows import Workflow
from api.webhooks.models import CredentialStamp, NewDelivery, Webhook, WebhookDelivery

log = logging.getLogger("gorax.webhooks.writer")

#: Most rows in one transaction.
MAX_BATCH = 500

# SQLAlchemy declares a mapped class's __table__ a FromClause; a declarative class's is its Table.
_TABLE: Table = WebhookDelivery.__table__  # type: ignore[assignment]
_COLUMNS = [c for c in _TABLE.columns if c.key != "seq"]


def _values(row: WebhookDelivery | NewDelivery) -> dict[str, Any]:
    """The row's column values, with the column defaults an ORM flush would have filled in."""
    values = {}
    for column in _COLUMNS:
        value = getattr(row, column.key)
        if value is None and column.default is not None:
            default = column.default
            value = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
            setattr(row, column.key, value)
        values[column.key] = value
    return values


class StaleWebhook(Unavailable):
    """The webhook changed while the delivery was being checked (503 if it reaches a sender)."""


@dataclass(frozen=True)
class Version:
    """The state of a webhook a delivery was checked against, with the name and change stamp of
    the signing secret it was verified with (``secret`` None: none was used)."""

    webhook_id: str
    token: str
    updated_at: datetime
    secret: tuple[str, str | None] | None = None

    @classmethod
    def of(cls, webhook: Webhook, secret: tuple[str, str | None] | None = None) -> Version:
        return cls(webhook.id, webhook.token, webhook.updated_at, secret)

    def current_in(
        self, webhooks: set[tuple[str, str, datetime]], stamps: dict[tuple[str, str], str | None], tenant_id: str
    ) -> bool:
        """Whether the webhook is one of ``webhooks`` and the secret's stamp still ``stamps``'s."""
        if (self.webhook_id, self.token, self.updated_at) not in webhooks:
            return False
        return self.secret is None or stamps.get((tenant_id, self.secret[0])) == self.secret[1]


@dataclass(eq=False)
class _Item:
    row: WebhookDelivery | NewDelivery
    version: Version | None
    future: asyncio.Future[None]


class DeliveryWriter:
    """Commits rows of one database in batches; :meth:`store` returns once its row is committed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: list[_Item] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0
        self.rows = 0

    async def store(self, row: WebhookDelivery | NewDelivery, version: Version | None = None) -> None:
        """Commit ``row`` (a new delivery); raises what its commit raised.

        With ``version`` the row is stored only if its webhook is still that version, active,
        and its workflow neither paused nor archived; else :class:`StaleWebhook`.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(row, version, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        await asyncio.shield(future)  # a cancelled request does not cancel its row's commit

    async def _flush_all(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            by_tenant: dict[str, list[_Item]] = {}
            for item in batch:
                by_tenant.setdefault(item.row.tenant_id, []).append(item)
            for tenant_id, items in by_tenant.items():
                await self._commit(tenant_id, items)

    async def _commit(self, tenant_id: str, items: list[_Item]) -> None:
        try:
            async with self.db.tenant_scope(tenant_id=tenant_id) as session:
                fresh, stale = await session.run_sync(_write, items, self.db.dialect)
                await session.commit()
        except IntegrityError as exc:
            if len(items) == 1:
                _settle(items[0].future, exc)
                return
            for item in items:  # one by one: each gets its own answer
                await self._commit(tenant_id, [item])
            return
        except BaseException as exc:  # noqa: BLE001 - every waiting request hears of it
            for item in items:
                _settle(item.future, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.rows += len(fresh)
        _answer(fresh, stale)


class SqliteDeliveryWriter:
    """The SQLite writer: one thread, one connection, every delivery write of the process.

    The thread starts on first use and ends after ``idle`` quiet seconds (closing its
    connection); :meth:`store` and :meth:`execute` wait on the caller's event loop.
    """

    def __init__(self, db: Database, idle: float = 10.0) -> None:
        self.db = db
        self.idle = idle
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.rows = 0

    async def store(self, row: WebhookDelivery | NewDelivery, version: Version | None = None) -> None:
        """As :meth:`DeliveryWriter.store`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submit(_Item(row, version, future))
        await asyncio.shield(future)

    async def execute(self, work: Callable[[Any], Any]) -> Any:
        """Run ``work(connection)`` on the writer's connection and commit; its result."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._submit((work, future))
        return await asyncio.shield(future)

    def _submit(self, entry: Any) -> None:
        self._queue.put(entry)  # before the check below: a thread about to stop sees it
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gorax-delivery-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        engine = self.db.sync_engine()
        try:
            with engine.connect() as conn:
                while True:
                    try:
                        entries = [self._queue.get(timeout=self.idle)]
                    except queue.Empty:
                        with self._lock:
                            if self._queue.empty():
                                self._thread = None
                                return
                        continue
                    while len(entries) < MAX_BATCH:
                        try:
                            entries.append(self._queue.get_nowait())
                        except queue.Empty:
                            break
                    self._process(conn, entries)
        except BaseException:  # noqa: BLE001 - the next write starts a new thread
            log.exception("the delivery writer stopped")
            with self._lock:
                self._thread = None
            raise
        finally:
            engine.dispose()

    def _process(self, conn: Any, entries: list[Any]) -> None:
        """Everything queued meanwhile in one transaction, one commit (on SQLite an fsync of
        the log, most of a batch's time): the work first (a read there sees only committed
        rows), then the rows. If anything fails, it all rolls back and each entry is done in
        a transaction of its own, so each hears its own outcome."""
        works = [entry for entry in entries if not isinstance(entry, _Item)]
        items = [entry for entry in entries if isinstance(entry, _Item)]
        if works and len(entries) > 1:
            try:
                results = [work(conn) for work, _future in works]
                fresh, stale = _write_sqlite(conn, items) if items else ([], [])
                conn.commit()
            except Exception:  # noqa: BLE001 - done again entry by entry below
                conn.rollback()
            else:
                self.batches += bool(items)
                self.rows += len(fresh)
                _answer_threadsafe(
                    fresh,
                    stale,
                    [(future, None, result) for (_work, future), result in zip(works, results, strict=True)],
                )
                return
        self._one_by_one(conn, entries)

    def _one_by_one(self, conn: Any, entries: list[Any]) -> None:
        rows: list[_Item] = []
        for entry in entries:
            if isinstance(entry, _Item):
                rows.append(entry)
                continue
            if rows:
                self._commit(conn, rows)
                rows = []
            work, future = entry
            try:
                result = work(conn)
                conn.commit()
            except Exception as exc:  # noqa: BLE001 - the caller hears of it
                conn.rollback()
                _settle_threadsafe(future, exc)
            else:
                _settle_threadsafe(future, None, result)
        if rows:
            self._commit(conn, rows)

    def _commit(self, conn: Any, items: list[_Item]) -> None:
        try:
            fresh, stale = _write_sqlite(conn, items)
            conn.commit()
        except IntegrityError as exc:
            conn.rollback()
            if len(items) == 1:
                _settle_threadsafe(items[0].future, exc)
                return
            for item in items:
                self._commit(conn, [item])
            return
        except Exception as exc:  # noqa: BLE001 - every waiting request hears of it
            conn.rollback()
            for item in items:
                _settle_threadsafe(item.future, exc)
            return
        self.batches += 1
        self.rows += len(fresh)
        _answer_threadsafe(fresh, stale)


def _write(conn: Any, items: list[_Item], dialect: str) -> tuple[list[_Item], list[_Item]]:
    """Insert ``items`` and take out those whose webhook changed (no commit): (stored, stale).

    Insert first: the check then sees every change committed before it; on SQLite the
    transaction holds the write lock from its first statement (a read first could not be
    upgraded after another commit), on PostgreSQL the check's share lock lasts until the commit.
    """
    conn.execute(insert(_TABLE), [_values(item.row) for item in items])
    return _take_out_stale(conn, items, dialect)


def _take_out_stale(conn: Any, items: list[_Item], dialect: str) -> tuple[list[_Item], list[_Item]]:
    """Delete the inserted rows whose webhook or secret is no longer current: (stored, stale)."""
    webhooks = _current_versions(conn, items, dialect)
    stamps = _current_stamps(conn, items, dialect)
    fresh: list[_Item] = []
    stale: list[_Item] = []
    for item in items:
        current = item.version is None or item.version.current_in(webhooks, stamps, item.row.tenant_id)
        (fresh if current else stale).append(item)
    if stale:
        conn.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_([item.row.id for item in stale])))
    return fresh, stale


class _SqliteStatements:
    """The writer's insert as SQL text with its columns' type processing resolved once.

    The same rows as :func:`_write`, without building and compiling an SQLAlchemy insert for
    every batch: on the writer thread that was most of its time holding the GIL, which the event
    loop receiving the deliveries then waited for.
    """

    def __init__(self, dialect: Any) -> None:
        self.names = [column.key for column in _COLUMNS]
        self.insert = (
            f"INSERT INTO {_TABLE.name} ({', '.join(c.name for c in _COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
        )
        self.binds = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in _COLUMNS]

    def row(self, item: _Item) -> tuple[Any, ...]:
        values = _values(item.row)
        return tuple(
            value if bind is None or value is None else bind(value)
            for value, bind in zip((values[name] for name in self.names), self.binds, strict=True)
        )


_sqlite_statements: dict[Any, _SqliteStatements] = {}


def _write_sqlite(conn: Any, items: list[_Item]) -> tuple[list[_Item], list[_Item]]:
    """:func:`_write` on the SQLite writer's connection, the insert as plain SQL (same result)."""
    statements = _sqlite_statements.get(conn.dialect)
    if statements is None:
        statements = _sqlite_statements[conn.dialect] = _SqliteStatements(conn.dialect)
    conn.exec_driver_sql(statements.insert, [statements.row(item) for item in items])
    return _take_out_stale(conn, items, "sqlite")


def _current_versions(conn: Any, items: list[_Item], dialect: str) -> set[tuple[str, str, datetime]]:
    """The current (id, token, updated_at) of the webhooks ``items`` were checked against."""
    ids = sorted({item.version.webhook_id for item in items if item.version})
    if not ids:
        return set()
    rows = conn.execute(_versions_statement(dialect), {"ids": ids})
    return {(webhook_id, token, updated_at) for webhook_id, token, updated_at in rows}


def _current_stamps(conn: Any, items: list[_Item], dialect: str) -> dict[tuple[str, str], str | None]:
    """The current change stamps of the secrets ``items`` were verified with, by (tenant, name).

    Read after the webhooks (whose rows PostgreSQL then holds shared): a credential change
    locks those rows first, so it waits for this batch or this batch sees its stamp.
    """
    pairs = {
        (item.row.tenant_id, item.version.secret[0])
        for item in items
        if item.version is not None and item.version.secret is not None
    }
    if not pairs:
        return {}
    rows = conn.execute(
        _stamps_statement(dialect), {"tenants": sorted({t for t, _ in pairs}), "names": sorted({n for _, n in pairs})}
    )
    return {(tenant_id, name): stamp for tenant_id, name, stamp in rows}


@functools.cache
def _versions_statement(dialect: str) -> Any:
    """Active webhooks (workflow neither paused nor archived) among the bound ``ids``: built
    once per dialect (its compiled form is cached; building it per batch was not)."""
    query = (
        select(Webhook.id, Webhook.token, Webhook.updated_at)
        .join(Workflow, Workflow.id == Webhook.workflow_id)
        .where(
            Webhook.id.in_(bindparam("ids", expanding=True)),
            Webhook.active.is_(True),
            Workflow.status.not_in(("paused", "archived")),
        )
    )
    if dialect == "postgresql":
        # A rotation or pause waits for this batch instead of slipping in before its commit.
        query = query.with_for_update(read=True, of=Webhook)
    return query


@functools.cache
def _stamps_statement(dialect: str) -> Any:
    """Stamps of the bound ``names`` of the bound ``tenants`` (built once per dialect)."""
    return select(CredentialStamp.tenant_id, CredentialStamp.name, CredentialStamp.stamp).where(
        CredentialStamp.tenant_id.in_(bindparam("tenants", expanding=True)),
        CredentialStamp.name.in_(bindparam("names", expanding=True)),
    )


_Outcome = tuple[asyncio.Future[Any], BaseException | None, Any]  # future, error, result


def _outcomes(fresh: list[_Item], stale: list[_Item]) -> list[_Outcome]:
    return [
        (
            item.future,
            StaleWebhook(
                "the webhook changed while this delivery was checked; deliver it again", headers={"Retry-After": "1"}
            ),
            None,
        )
        for item in stale
    ] + [(item.future, None, None) for item in fresh]


def _answer(fresh: list[_Item], stale: list[_Item]) -> None:
    _settle_all(_outcomes(fresh, stale))


def _answer_threadsafe(fresh: list[_Item], stale: list[_Item], results: list[_Outcome] | None = None) -> None:
    """:func:`_answer` from the writer thread: one wake-up of each waiting loop per batch (a
    wake-up per row was a system call each, and the GIL handed back and forth with it), with
    the ``results`` of work done in the same transaction."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in [*_outcomes(fresh, stale), *(results or [])]:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, outcomes in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_all, outcomes)
        except RuntimeError:  # the caller's loop has closed: nobody is waiting
            pass


def _settle_all(outcomes: list[_Outcome]) -> None:
    for future, exc, result in outcomes:
        _settle(future, exc, result)


def _settle_threadsafe(future: asyncio.Future[Any], exc: BaseException | None, result: Any = None) -> None:
    try:
        future.get_loop().call_soon_threadsafe(_settle, future, exc, result)
    except RuntimeError:  # the caller's loop has closed: nobody is waiting
        pass


def _settle(future: asyncio.Future[Any], exc: BaseException | None, result: Any = None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(result)
    else:
        future.set_exception(exc)


_writers: weakref.WeakKeyDictionary[Database, DeliveryWriter | SqliteDeliveryWriter] = weakref.WeakKeyDictionary()


def writer_for(db: Database) -> DeliveryWriter | SqliteDeliveryWriter:
    """The writer of ``db`` (one per database object, created on first use)."""
    writer = _writers.get(db)
    if writer is None:
        writer = SqliteDeliveryWriter(db) if db.dialect == "sqlite" else DeliveryWriter(db)
        _writers[db] = writer
    return writer
