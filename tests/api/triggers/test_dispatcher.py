"""The dispatcher on its own database: order, exactly once, and two replicas on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from prefect.client.orchestration import get_client

from api.db.engine import Database
from api.models.workflows import Workflow
from api.services.identity import create_tenant_with_admin
from api.webhooks.dispatcher import Dispatcher
from api.webhooks.models import Webhook, WebhookDelivery
from tests.conftest import _pg_admin


class Recording(Dispatcher):
    """A dispatcher whose Prefect is a list: what it would have posted, batch by batch."""

    def __init__(self, db: Database, posted: list[list[str]], **kwargs: Any) -> None:
        super().__init__(db, get_client(), **kwargs)  # never opened: nothing reaches Prefect
        self.posted = posted

    async def _post(self, deliveries: list[WebhookDelivery]) -> None:
        await asyncio.sleep(0.01)  # a round trip, so replicas overlap
        self.posted.append([d.id for d in deliveries])


async def _database(kind: str, sqlite_dir: Any) -> tuple[Database, str | None]:
    if kind == "sqlite":
        return Database(f"sqlite+aiosqlite:///{sqlite_dir / 'dispatch.db'}"), None
    name = f"gorax_test_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    return Database(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"), name


async def _deliveries(db: Database, count: int) -> list[str]:
    created = await create_tenant_with_admin(db, name="Dispatch", admin_email="d@t.test")
    tenant = created["tenant_id"]
    async with db.system_scope() as session:
        workflow = Workflow(tenant_id=tenant, name="hooked", graph={})
        session.add(workflow)
        await session.flush()
        webhook = Webhook(tenant_id=tenant, workflow_id=workflow.id, node_id="hook", token=uuid.uuid4().hex, config={})
        session.add(webhook)
        await session.flush()
        rows = [
            WebhookDelivery(
                tenant_id=tenant,
                webhook_id=webhook.id,
                workflow_id=workflow.id,
                node_id="hook",
                status="accepted",
                method="POST",
                headers={},
                query={},
                body=b"{}",
                payload={"n": n},
            )
            for n in range(count)
        ]
        session.add_all(rows)
        await session.commit()
        return [r.id for r in sorted(rows, key=lambda r: r.seq)]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_every_delivery_is_sent_once_in_order(kind: str, tmp_path: Any) -> None:
    db, pg_name = await _database(kind, tmp_path)
    try:
        await db.migrate()
        ids = await _deliveries(db, 120)
        posted: list[list[str]] = []
        dispatcher = Recording(db, posted, batch_size=50)
        while await dispatcher.dispatch_once():
            pass
        assert [i for batch in posted for i in batch] == ids  # in seq order, each once
        assert [len(b) for b in posted] == [50, 50, 20]
        async with db.system_scope() as session:
            from sqlalchemy import select

            statuses = set((await session.execute(select(WebhookDelivery.status))).scalars())
        assert statuses == {"dispatched"}
    finally:
        await db.dispose()
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_paused_workflows_deliveries_are_held_until_it_is_resumed(kind: str, tmp_path: Any) -> None:
    from sqlalchemy import select, update

    db, pg_name = await _database(kind, tmp_path)
    try:
        await db.migrate()
        ids = await _deliveries(db, 6)
        async with db.system_scope() as session:
            workflow_id = (await session.execute(select(Workflow.id))).scalar_one()
            await session.execute(update(Workflow).values(status="paused"))
            await session.commit()
        posted: list[list[str]] = []
        dispatcher = Recording(db, posted, batch_size=50)
        assert await dispatcher.dispatch_once() == 0 and posted == []
        async with db.system_scope() as session:
            statuses = set((await session.execute(select(WebhookDelivery.status))).scalars())
            assert statuses == {"accepted"}  # held, not dropped
            await session.execute(update(Workflow).where(Workflow.id == workflow_id).values(status="active"))
            await session.commit()
        assert await dispatcher.dispatch_once() == 6
        assert posted == [ids]  # in order, once
    finally:
        await db.dispose()
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


async def test_two_replicas_on_postgresql_never_send_a_delivery_twice(tmp_path: Any) -> None:
    db, pg_name = await _database("postgres", tmp_path)
    other = Database(db.url)
    try:
        await db.migrate()
        ids = await _deliveries(db, 300)
        posted: list[list[str]] = []
        replicas = [Recording(db, posted, batch_size=20), Recording(other, posted, batch_size=20)]

        async def drain(dispatcher: Dispatcher) -> None:
            while await dispatcher.dispatch_once():
                pass

        await asyncio.gather(*(drain(r) for r in replicas))
        sent = [i for batch in posted for i in batch]
        assert sorted(sent) == sorted(ids) and len(sent) == len(set(sent))
        assert all(r.sent for r in replicas), "both replicas should have taken a share"
    finally:
        await other.dispose()
        await db.dispose()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_events_carry_each_payload_as_stored(kind: str, tmp_path: Any) -> None:
    """The posted events are built with the stored payload's JSON text spliced in: they must
    decode to exactly the events of the deliveries (payloads of any shape, odd node ids)."""
    import json

    from sqlalchemy import select, update

    from api.webhooks.dispatcher import EVENT_NAME, events_json, workflow_resource

    db, pg_name = await _database(kind, tmp_path)
    try:
        await db.migrate()
        ids = await _deliveries(db, 4)
        payloads = [
            {
                "body": {
                    "s": 'caf\u00e9 \u2603 "quoted" \\ </script>',
                    "n": 10**20,
                    "f": 1.5,
                    "none": None,
                    "list": [True, {}],
                }
            },
            {},
            None,
            {"deep": [[[{"x": "\t\n\u0001"}]]]},
        ]
        async with db.system_scope() as session:
            for delivery_id, payload in zip(ids, payloads):
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id)
                    .values(payload=payload, node_id='hook "1"')
                )
            await session.commit()
            rows = {r.id: r for r in (await session.execute(select(WebhookDelivery))).scalars()}
        dispatcher = Dispatcher(db, get_client())  # reads the store only: the client is never opened
        pending = await dispatcher._pending()
        assert [p.id for p in pending] == ids
        events = json.loads(events_json(pending))
        assert events == [
            {
                "id": delivery_id,
                "occurred": rows[delivery_id].received_at.isoformat(),
                "event": EVENT_NAME,
                "resource": {
                    "prefect.resource.id": workflow_resource(rows[delivery_id].workflow_id),
                    "gorax.trigger-node": 'hook "1"',
                    "gorax.webhook": rows[delivery_id].webhook_id,
                    "gorax.tenant": rows[delivery_id].tenant_id,
                },
                "related": [
                    {
                        "prefect.resource.id": f"prefect.tag.tenant:{rows[delivery_id].tenant_id}",
                        "prefect.resource.role": "tag",
                    }
                ],
                "payload": payload or {},
            }
            for delivery_id, payload in zip(ids, payloads)
        ]
    finally:
        await db.dispose()
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
