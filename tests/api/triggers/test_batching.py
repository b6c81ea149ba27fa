"""Group commit of deliveries: one transaction for concurrent requests, each its own answer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from api.webhooks.batching import DeliveryWriter
from api.webhooks.models import WebhookDelivery
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
        writer = DeliveryWriter(db)

        def row(key: str) -> WebhookDelivery:
            return WebhookDelivery(id=str(uuid.uuid4()), tenant_id=first.tenant_id,
                                   webhook_id=first.webhook_id, workflow_id=first.workflow_id,
                                   node_id="hook", status="accepted", method="POST", headers={},
                                   query={}, body=b"{}", dedupe_key=key)

        rows = [row(f"key-{n}") for n in range(200)]
        await asyncio.gather(*(writer.store(r) for r in rows))
        assert writer.rows == 200 and writer.batches < 20  # batched, not one commit per row
        assert all(r.seq for r in rows)

        # A batch holding a duplicate delivery id: the others are stored, the duplicate alone fails.
        again = [row(f"new-{n}") for n in range(5)] + [row("key-7")]
        results = await asyncio.gather(*(writer.store(r) for r in again), return_exceptions=True)
        assert [type(r) for r in results] == [type(None)] * 5 + [IntegrityError]
        assert all(r.seq for r in again[:5])
        async with db.system_scope() as session:
            assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1 + 200 + 5
    finally:
        await db.dispose()
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
