"""Group commit of deliveries: one transaction for concurrent requests, each its own answer."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.webhooks.batching import DeliveryWriter, SqliteDeliveryWriter, StaleWebhook, Version, writer_for
from api.webhooks.models import Webhook, WebhookDelivery
from tests.api.triggers.test_dispatcher import _database, _deliveries
from tests.conftest import _pg_admin


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_concurrent_rows_share_commits_and_a_duplicate_fails_alone(kind: str, tmp_path: Any) -> None:
    db, pg_name = await _database(kind, tmp_path)
    try:
        await db.migrate()
        await _deliveries(db, 1)  # a tenant, workflow and webhook to hang rows on
        async with db.system_scope() as session:
            first = (await session.execute(select(WebhookDelivery))).scalars().one()
        writer = writer_for(db)
        # SQLite: a thread with its own connection; PostgreSQL: a task on the event loop.
        assert isinstance(writer, SqliteDeliveryWriter if kind == "sqlite" else DeliveryWriter)

        def row(key: str) -> WebhookDelivery:
            return WebhookDelivery(
                id=str(uuid.uuid4()),
                tenant_id=first.tenant_id,
                webhook_id=first.webhook_id,
                workflow_id=first.workflow_id,
                node_id="hook",
                status="accepted",
                method="POST",
                headers={},
                query={},
                body=b"{}",
                dedupe_key=key,
            )

        rows = [row(f"key-{n}") for n in range(200)]
        await asyncio.gather(*(writer.store(r) for r in rows))
        assert writer.rows == 200 and writer.batches < 20  # batched, not one commit per row

        # A batch holding a duplicate delivery id: the others are stored, the duplicate alone fails.
        again = [row(f"new-{n}") for n in range(5)] + [row("key-7")]
        results = await asyncio.gather(*(writer.store(r) for r in again), return_exceptions=True)
        assert [type(r) for r in results] == [type(None)] * 5 + [IntegrityError]
        async with db.system_scope() as session:
            stored = set((await session.execute(select(WebhookDelivery.id))).scalars())
        assert stored == {first.id} | {r.id for r in rows + again[:5]}
        assert all(r.received_at and r.attempts == 0 for r in rows)  # column defaults filled in

        # Every column comes back as it went in (SQLite's writer binds them as plain SQL).
        rich = row("rich")
        rich.headers = {"content-type": "application/json", "x-note": "caf\u00e9 \u2603"}
        rich.query = {"a": ["1", "2"], "b": ""}
        rich.body = b'\x00\xff{"n": 1}'
        rich.payload = {"body": {"n": 10**20, "s": "\u00fc", "none": None}, "list": [1.5, True]}
        rich.external_id, rich.reason, rich.replay_of = "ext-1", "why", first.id
        await writer.store(rich)
        async with db.system_scope() as session:
            back = (await session.execute(select(WebhookDelivery).where(WebhookDelivery.id == rich.id))).scalars().one()
        for column in WebhookDelivery.__table__.columns:
            if column.key != "seq":
                assert getattr(back, column.key) == getattr(rich, column.key), column.key
        assert back.received_at.tzinfo is not None and back.seq > first.seq

        # Rows checked against a webhook that has changed since (rotated token) are not stored;
        # rows of the current version in the same batch are.
        async with db.system_scope() as session:
            hook = (await session.execute(select(Webhook))).scalars().one()
        current = Version.of(hook)
        old = Version(hook.id, "an-old-token", hook.updated_at)
        mixed = [row(f"v-{n}") for n in range(4)]
        results = await asyncio.gather(
            *(writer.store(r, v) for r, v in zip(mixed, [current, old, current, old])), return_exceptions=True
        )
        assert [type(r) for r in results] == [type(None), StaleWebhook, type(None), StaleWebhook]
        async with db.system_scope() as session:
            ids = set(
                (
                    await session.execute(select(WebhookDelivery.id).where(WebhookDelivery.dedupe_key.like("v-%")))
                ).scalars()
            )
        assert ids == {mixed[0].id, mixed[2].id}
    finally:
        await db.dispose()
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


async def test_sqlite_writer_commits_work_and_rows_queued_together_once(tmp_path: Any) -> None:
    """What queued up while the writer was busy (the dispatcher's reads and updates, deliveries)
    is one transaction and one commit; when part of it fails, each entry still hears its own
    outcome and nothing else is lost."""
    from sqlalchemy import event, func, text, update
    from sqlalchemy.engine import Engine

    db, _ = await _database("sqlite", tmp_path)
    commits: list[int] = []

    def count(conn: Any) -> None:  # commits on this test's database only (servers of other
        if conn.engine.url.database == str(tmp_path / "dispatch.db"):  # tests share the process)
            commits.append(1)

    event.listen(Engine, "commit", count)
    try:
        await db.migrate()
        await _deliveries(db, 1)
        async with db.system_scope() as session:
            first = (await session.execute(select(WebhookDelivery))).scalars().one()
        writer = writer_for(db)
        assert isinstance(writer, SqliteDeliveryWriter)

        def row(key: str) -> WebhookDelivery:
            return WebhookDelivery(
                id=str(uuid.uuid4()),
                tenant_id=first.tenant_id,
                webhook_id=first.webhook_id,
                workflow_id=first.workflow_id,
                node_id="hook",
                status="accepted",
                method="POST",
                headers={},
                query={},
                body=b"{}",
                dedupe_key=key,
            )

        def stored(conn: Any) -> int:
            return conn.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one()

        def mark(conn: Any) -> int:
            return conn.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == first.id)
                .values(attempts=WebhookDelivery.attempts + 1)
            ).rowcount

        def broken(conn: Any) -> None:
            conn.execute(text("SELECT * FROM no_such_table"))

        async def cycle(*entries: Any) -> list[Any]:
            """``entries`` queued while the writer sleeps in another entry: one cycle."""
            busy = asyncio.ensure_future(writer.execute(lambda _conn: time.sleep(0.3)))
            await asyncio.sleep(0.1)
            commits.clear()
            tasks = [asyncio.ensure_future(e) for e in entries]
            await busy
            return await asyncio.gather(*tasks, return_exceptions=True)

        # All fine: one commit; the read saw only rows committed before this cycle.
        rows = [row(f"a-{n}") for n in range(5)]
        results = await cycle(writer.execute(stored), *(writer.store(r) for r in rows), writer.execute(mark))
        assert results == [1, None, None, None, None, None, 1]
        assert len(commits) == 1
        assert await writer.execute(stored) == 6

        # A failing work: it alone fails; the rows and the other work are done.
        rows = [row(f"b-{n}") for n in range(3)]
        results = await cycle(writer.execute(broken), *(writer.store(r) for r in rows), writer.execute(mark))
        assert "no_such_table" in str(results[0])
        assert results[1:] == [None, None, None, 1]
        assert await writer.execute(stored) == 9

        # A duplicate delivery: it alone fails; the work's update is applied once, not twice.
        rows = [row("c-0"), row("a-1"), row("c-2")]
        results = await cycle(writer.execute(mark), *(writer.store(r) for r in rows))
        assert results[0] == 1 and results[1] is None and results[3] is None
        assert isinstance(results[2], IntegrityError)
        async with db.system_scope() as session:
            attempts = (
                await session.execute(select(WebhookDelivery.attempts).where(WebhookDelivery.id == first.id))
            ).scalar_one()
            keys = set((await session.execute(select(WebhookDelivery.dedupe_key))).scalars())
        assert attempts == 3
        assert {"c-0", "c-2"} <= keys and len(keys) == 11
    finally:
        event.remove(Engine, "commit", count)
        await db.dispose()
