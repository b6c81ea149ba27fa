"""One route from a webhook delivery to a run; repairing a lost event is an explicit job.

A delivery becomes a run only through its event and the workflow's automation: the dispatcher
links runs but never starts one. A delivery whose event was lost (simulated here by storing a
delivery as dispatched without posting its event) stays without a run until
``gorax webhooks repair`` posts its event again, with the same id, under a lock that lets one
repair run at a time. All on PostgreSQL, the database several API replicas share.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import Text, cast, select, text, update

from api.db.base import new_id, utcnow
from api.db.engine import Database
from api.models.audit import AuditEvent
from api.prefect import events as prefect_events
from api.webhooks.dispatcher import events_json
from api.webhooks.models import WebhookDelivery
from api.webhooks.repair import LOCK_KEY, repair
from tests.api.conftest import TenantHandle
from tests.api.triggers.conftest import _tenant, api_client, eventually, flow_runs, graph, hook, publish_new

HOUR = 3600.0


@pytest.fixture
async def pg_tenant(tr_servers: Any, tr_databases: dict[str, Database], postgres_url: str) -> TenantHandle:
    """A fresh tenant on the trigger API of the PostgreSQL database."""
    return await _tenant(tr_servers, tr_databases, postgres_url)


@pytest.fixture
async def pg(tr_databases: dict[str, Database], postgres_url: str, pg_tenant: TenantHandle) -> Database:
    return tr_databases[postgres_url]


async def _workflow_with_a_run(tenant: TenantHandle) -> tuple[str, str]:
    """A published webhook workflow and a delivery its automation ran (workflow id, delivery id)."""
    async with api_client(tenant) as client:
        workflow_id = await publish_new(
            client, graph(f"route-{uuid.uuid4().hex[:6]}", [hook("open", {"scheme": "none"})])
        )
        webhook = (await client.get("/api/v1/webhooks", params={"workflow_id": workflow_id})).json()["items"][0]
        # Prefect's triggers service takes up a new automation in a task after the commit.
        await asyncio.sleep(1.0)
        sent = await client.post(webhook["url"], json={"n": 0})
        assert sent.status_code == 202, sent.text
    delivery_id = sent.json()["delivery_id"]
    await eventually(lambda: _runs_of(workflow_id, delivery_id), timeout=120)
    return workflow_id, delivery_id


async def _lost(db: Database, template_id: str, *, age: float) -> Any:
    """A copy of a delivery stored as dispatched ``age`` seconds ago whose event never reached
    Prefect (the row is written here; nothing is posted)."""
    async with db.system_scope() as session:
        old = (await session.execute(select(WebhookDelivery).where(WebhookDelivery.id == template_id))).scalar_one()
        fresh_id, when = new_id(), utcnow() - timedelta(seconds=age)
        session.add(
            WebhookDelivery(
                id=fresh_id,
                tenant_id=old.tenant_id,
                webhook_id=old.webhook_id,
                workflow_id=old.workflow_id,
                node_id=old.node_id,
                status="dispatched",
                method=old.method,
                headers=old.headers,
                query=old.query,
                body=old.body,
                payload={**old.payload, "delivery_id": fresh_id},
                attempts=1,
                received_at=when - timedelta(seconds=1),
                dispatched_at=when,
            )
        )
        await session.commit()
    return await _row(db, fresh_id)


async def _row(db: Database, delivery_id: str) -> Any:
    d = WebhookDelivery
    async with db.system_scope() as session:
        return (
            await session.execute(
                select(
                    d.seq,
                    d.id,
                    d.tenant_id,
                    d.workflow_id,
                    d.node_id,
                    d.webhook_id,
                    d.received_at,
                    d.dispatched_at,
                    d.run_id,
                    d.attempts,
                    cast(d.payload, Text).label("payload"),
                ).where(d.id == delivery_id)
            )
        ).one()


async def _runs_of(workflow_id: str, delivery_id: str) -> list[Any]:
    return [
        r for r in await flow_runs(workflow_id) if (r.parameters.get("trigger") or {}).get("delivery_id") == delivery_id
    ]


async def _linked(db: Database, delivery_id: str) -> str | None:
    return (await _row(db, delivery_id)).run_id


async def test_an_event_posted_twice_with_its_id_starts_one_run(pg_tenant: TenantHandle, pg: Database) -> None:
    workflow_id, first = await _workflow_with_a_run(pg_tenant)
    lost = await _lost(pg, first, age=60)
    async with get_client() as client:
        await prefect_events.post_events(client, events_json([lost]))
        await prefect_events.post_events(client, events_json([lost]))
    await eventually(lambda: _runs_of(workflow_id, lost.id), timeout=120)
    await asyncio.sleep(5)  # time for a second run, were there one
    runs = await _runs_of(workflow_id, lost.id)
    assert len(runs) == 1, runs
    assert runs[0].parameters["trigger"]["body"] == {"n": 0}
    assert len(await flow_runs(workflow_id)) == 2  # the first delivery's and this one


async def test_a_lost_event_gets_its_run_from_repair_only(
    pg_tenant: TenantHandle, pg: Database, postgres_url: str, tmp_path: Path
) -> None:
    workflow_id, first = await _workflow_with_a_run(pg_tenant)
    # Dispatched two hours ago and still without a run: the dispatcher used to run such a
    # delivery directly from the deployment on its next pass. It no longer starts runs.
    lost = await _lost(pg, first, age=2 * HOUR)
    await asyncio.sleep(10)  # three passes of the dispatcher's link loop
    assert await _runs_of(workflow_id, lost.id) == []
    assert await _linked(pg, lost.id) is None

    env = {**os.environ, "GORAX_DATABASE_URL": postgres_url, "GORAX_HOME": str(tmp_path)}
    gorax = str(Path(sys.executable).parent / "gorax")

    def cli(*args: str) -> Any:
        done = subprocess.run(
            [gorax, "webhooks", "repair", "--tenant", pg_tenant.id, "--json", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    dry = await asyncio.to_thread(cli, "--dry-run")
    assert dry["reposted"] == [lost.id] and dry["dry_run"] and dry["checked"] == 1
    await asyncio.sleep(3)
    assert await _runs_of(workflow_id, lost.id) == []
    assert (await _row(pg, lost.id)).dispatched_at == lost.dispatched_at  # nothing changed

    done = await asyncio.to_thread(cli)  # the default age, one hour
    assert done["reposted"] == [lost.id] and done["linked"] == {} and not done["busy"]
    (run,) = await eventually(lambda: _runs_of(workflow_id, lost.id), timeout=120)
    assert run.parameters["trigger_node"] == "open" and run.parameters["trigger"]["body"] == {"n": 0}
    assert await eventually(lambda: _linked(pg, lost.id), timeout=60) == str(run.id)

    # Run again at once: the delivery is linked, nothing is old and runless any more.
    again = await asyncio.to_thread(cli, "--older-than", "0")
    assert again["checked"] == 0 and again["reposted"] == []
    assert len(await _runs_of(workflow_id, lost.id)) == 1

    async with pg.tenant_scope(tenant_id=pg_tenant.id) as session:
        (event,) = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.tenant_id == pg_tenant.id, AuditEvent.action == "webhook.repair")
            )
        ).scalars()
    assert event.actor_type == "system" and event.details["reposted"] == [lost.id]
    assert event.details["reposted_count"] == 1


async def test_two_replicas_repairing_at_once_repost_once(
    pg_tenant: TenantHandle, pg: Database, postgres_url: str
) -> None:
    workflow_id, first = await _workflow_with_a_run(pg_tenant)
    lost = await _lost(pg, first, age=2 * HOUR)
    # A delivery whose run exists but was never linked (its link window passed): the repair
    # finds the run under the lock and links it instead of posting its event again.
    await eventually(lambda: _linked(pg, first), timeout=60)
    async with pg.system_scope() as session:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == first)
            .values(run_id=None, dispatched_at=utcnow() - timedelta(hours=2))
        )
        await session.commit()
    (first_run,) = await _runs_of(workflow_id, first)

    replicas = [Database(postgres_url), Database(postgres_url)]
    try:
        async with get_client() as one, get_client() as two:
            reports = await asyncio.gather(
                *(
                    repair(db, client, older_than=HOUR, tenant_id=pg_tenant.id)
                    for db, client in zip(replicas, (one, two))
                )
            )
    finally:
        for db in replicas:
            await db.dispose()
    # The second either found the lock held, or ran after the first and found nothing to do.
    (done,) = [r for r in reports if r.reposted or r.linked]
    (other,) = [r for r in reports if r is not done]
    assert other.busy or other.checked == 0, [r.as_dict() for r in reports]
    assert done.reposted == [lost.id]
    assert done.linked == {first: str(first_run.id)}
    assert await _linked(pg, first) == str(first_run.id)

    await eventually(lambda: _runs_of(workflow_id, lost.id), timeout=120)
    await asyncio.sleep(5)
    assert len(await _runs_of(workflow_id, lost.id)) == 1
    assert len(await _runs_of(workflow_id, first)) == 1


async def test_a_repair_while_another_holds_the_lock_does_nothing(
    pg_tenant: TenantHandle, pg: Database, postgres_url: str
) -> None:
    """While another replica holds the repair lock, a repair changes and posts nothing."""
    workflow_id, first = await _workflow_with_a_run(pg_tenant)
    lost = await _lost(pg, first, age=2 * HOUR)
    holder = Database(postgres_url)
    try:
        async with holder.system_scope() as session:
            assert (
                await session.execute(text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": LOCK_KEY})
            ).scalar_one()
            async with get_client() as client:
                report = await asyncio.wait_for(repair(pg, client, older_than=HOUR, tenant_id=pg_tenant.id), timeout=30)
            assert report.busy and report.reposted == [] and report.checked == 0
            assert (await _row(pg, lost.id)).dispatched_at == lost.dispatched_at
            await session.rollback()
    finally:
        await holder.dispose()
    async with get_client() as client:
        report = await repair(pg, client, older_than=HOUR, tenant_id=pg_tenant.id)
    assert report.reposted == [lost.id] and not report.busy
    await eventually(lambda: _runs_of(workflow_id, lost.id), timeout=120)


async def test_an_admin_repairs_their_own_tenants_deliveries_through_the_api(
    pg_tenant: TenantHandle, pg: Database, tr_servers: Any, tr_databases: dict[str, Database], postgres_url: str
) -> None:
    workflow_id, first = await _workflow_with_a_run(pg_tenant)
    lost = await _lost(pg, first, age=2 * HOUR)
    other = await _tenant(tr_servers, tr_databases, postgres_url)
    async with api_client(other) as client:  # another tenant's admin sees none of it
        seen = await client.post("/api/v1/webhooks/repair", json={"dry_run": True})
        assert seen.status_code == 200, seen.text
        assert seen.json()["checked"] == 0
    async with api_client(pg_tenant, "editor") as client:
        assert (await client.post("/api/v1/webhooks/repair", json={})).status_code == 403
    async with api_client(pg_tenant) as client:
        bad = await client.post("/api/v1/webhooks/repair", json={"older_than_seconds": -1})
        assert bad.status_code == 422, bad.text
        dry = await client.post("/api/v1/webhooks/repair", json={"dry_run": True})
        assert dry.status_code == 200 and dry.json()["reposted"] == [lost.id], dry.text
        assert await _runs_of(workflow_id, lost.id) == []
        done = await client.post("/api/v1/webhooks/repair", json={"older_than_seconds": HOUR})
        assert done.status_code == 200 and done.json()["reposted"] == [lost.id], done.text
    await eventually(lambda: _runs_of(workflow_id, lost.id), timeout=120)
    async with pg.tenant_scope(tenant_id=pg_tenant.id) as session:
        (event,) = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.tenant_id == pg_tenant.id, AuditEvent.action == "webhook.repair")
            )
        ).scalars()
    assert event.actor_type != "system" and event.details["reposted"] == [lost.id]
