"""A synchronous (``?wait=true``) delivery is marked with its run, so it is never dispatched again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from api.webhooks.models import NewDelivery, Webhook, WebhookDelivery
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
        outcome = await receive(
            db,
            webhook,
            method="POST",
            headers={"content-type": "application/json"},
            query={},
            body=b'{"wait": true}',
            direct=True,
        )
        assert outcome.status == "accepted"
        await _set(db, outcome.delivery, status="dispatched", run_id="run-1")
        async with db.system_scope() as session:
            rows = {r.id: r for r in (await session.execute(select(WebhookDelivery))).scalars()}
        stored = rows.pop(outcome.delivery.id)
        # Still "direct" with no run, the dispatcher would send it again after a minute: a
        # second run of the same delivery through the automation.
        assert (stored.status, stored.run_id) == ("dispatched", "run-1")
        assert {(r.status, r.run_id) for r in rows.values()} == {("accepted", None)}  # untouched
        # The receiver's plain delivery object was stored column for column.
        built = outcome.delivery
        assert isinstance(built, NewDelivery)
        for column in WebhookDelivery.__table__.columns:
            if column.key not in ("seq", "status", "run_id", "dispatched_at"):
                assert getattr(stored, column.key) == getattr(built, column.key), column.key
        assert stored.payload["body"] == {"wait": True} and stored.attempts == 0
    finally:
        await db.dispose()
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def test_a_new_delivery_names_a_column_it_does_not_have() -> None:
    with pytest.raises(TypeError, match="not a webhook delivery column: colour"):
        NewDelivery(id="d1", colour="red")
    assert NewDelivery(id="d1").status is None
