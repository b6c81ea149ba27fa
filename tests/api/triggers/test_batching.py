"""Group commit of deliveries: one transaction for concurrent requests, each its own answer."""

from __future__ import annotations

import asyncio
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
            return WebhookDelivery(id=str(uuid.uuid4()), tenant_id=first.tenant_id,
                                   webhook_id=first.webhook_id, workflow_id=first.workflow_id,
                                   node_id="hook", status="accepted", method="POST", headers={},
                                   query={}, body=b"{}", dedupe_key=key)

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
        rich.body = b"\x00\xff{\"n\": 1}"
        rich.payload = {"body": {"n": 10**20, "s": "\u00fc", "none": None}, "list": [1.5, True]}
        rich.external_id, rich.reason, rich.replay_of = "ext-1", "why", first.id
        await writer.store(rich)
        async with db.system_scope() as session:
            back = (await session.execute(select(WebhookDelivery).where(
                WebhookDelivery.id == rich.id))).scalars().one()
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
        results = await asyncio.gather(*(writer.store(r, v) for r, v in zip(mixed, [current, old, current, old])),
                                       return_exceptions=True)
        assert [type(r) for r in results] == [type(None), StaleWebhook, type(None), StaleWebhook]
        async with db.system_scope() as session:
            ids = set((await session.execute(select(WebhookDelivery.id).where(
                WebhookDelivery.dedupe_key.like("v-%")))).scalars())
        assert ids == {mixed[0].id, mixed[2].id}
    finally:
        await db.dispose()
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
