"""A synchronous (``?wait=true``) delivery is marked with its run, so it is never dispatched again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from api.webhooks.models import Webhook, WebhookDelivery
from api.webhooks.service import receive
from api.webhooks.sync_response import _set
from tests.api.triggers.test_dispatcher import _database, _deliveries
from tests.conftest import _pg_admin


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_direct_delivery_is_marked_with_its_run(kind: str, tmp_path: Any) -> None:
    db, pg_name = await _database(kind, tmp_path)
    try:
        await db.migrate()
        await _deliveries(db, 3)  # a tenant, workflow and webhook, and other deliveries around it
        async with db.system_scope() as session:
            webhook = (await session.execute(select(Webhook))).scalars().one()
        outcome = await receive(db, webhook, method="POST", headers={"content-type": "application/json"},
                                query={}, body=b'{"wait": true}', direct=True)
        assert outcome.status == "accepted"
        await _set(db, outcome.delivery, status="dispatched", run_id="run-1")
        async with db.system_scope() as session:
            rows = {r.id: r for r in (await session.execute(select(WebhookDelivery))).scalars()}
        stored = rows.pop(outcome.delivery.id)
        # Still "direct" with no run, the dispatcher would send it again after a minute: a
        # second run of the same delivery through the automation.
        assert (stored.status, stored.run_id) == ("dispatched", "run-1")
        assert {(r.status, r.run_id) for r in rows.values()} == {("accepted", None)}  # untouched
    finally:
        await db.dispose()
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
