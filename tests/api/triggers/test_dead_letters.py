"""Dead letters: a webhook delivery or a scheduled run that could not become a run is kept with
the reason, and an operator replays or discards it, one by one or in bulk; nothing is dropped.

Real Prefect and PostgreSQL. A delivery whose event never became a run is simulated as in the
repair tests: a copy of a real delivery stored as dispatched hours ago without a run.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from prefect.states import AwaitingRetry, Crashed, Late
from sqlalchemy import func, select

from api.db.base import utcnow
from api.db.engine import Database
from api.deadletters.models import DeadLetter
from api.models.audit import AuditEvent
from api.models.workflows import Workflow
from api.webhooks import failures
from api.webhooks.models import WebhookDelivery
from tests.api.conftest import TenantHandle
from tests.api.triggers.conftest import _tenant, api_client, eventually, flow_runs, graph, hook, publish_new
from tests.api.triggers.test_reconcile import _lost, _runs_of

HOURS = 3600.0


@pytest.fixture
async def pg_tenant(tr_servers: Any, tr_databases: dict[str, Database], postgres_url: str) -> TenantHandle:
    return await _tenant(tr_servers, tr_databases, postgres_url)


@pytest.fixture
async def pg_other(tr_servers: Any, tr_databases: dict[str, Database], postgres_url: str) -> TenantHandle:
    return await _tenant(tr_servers, tr_databases, postgres_url)


@pytest.fixture
async def pg(tr_databases: dict[str, Database], postgres_url: str, pg_tenant: TenantHandle) -> Database:
    return tr_databases[postgres_url]


async def _workflow_with_a_run(tenant: TenantHandle) -> tuple[str, str, str]:
    """A published webhook workflow and a delivery its automation ran (workflow, webhook and
    delivery ids)."""
    async with api_client(tenant) as client:
        workflow_id = await publish_new(client, graph(f"dl-{uuid.uuid4().hex[:6]}", [hook("open", {"scheme": "none"})]))
        webhook = (await client.get("/api/v1/webhooks", params={"workflow_id": workflow_id})).json()["items"][0]
        await asyncio.sleep(1.0)  # Prefect's triggers service takes up a new automation after the commit
        sent = await client.post(webhook["url"], json={"n": 0})
        assert sent.status_code == 202, sent.text
    delivery_id = sent.json()["delivery_id"]
    await eventually(lambda: _runs_of(workflow_id, delivery_id), timeout=120)
    return workflow_id, webhook["id"], delivery_id


async def _failure_events(delivery_id: str) -> list[Any]:
    """Prefect's ``gorax.webhook.delivery.failed`` events of one delivery."""
    async with get_client() as client:
        page = await client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=[failures.EVENT_NAME]),
                occurred=EventOccurredFilter(since=utcnow() - timedelta(hours=1)),
                resource=EventResourceFilter(labels={"gorax.delivery": [delivery_id]}),
            ),
            limit=10,
        )
    return list(page.events)


async def _sweep(tenant: TenantHandle, **body: Any) -> dict[str, Any]:
    async with api_client(tenant) as client:
        response = await client.post("/api/v1/dead-letters/sweep", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def _list(tenant: TenantHandle, role: str = "admin", **params: Any) -> dict[str, Any]:
    async with api_client(tenant, role) as client:
        response = await client.get("/api/v1/dead-letters", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _accounting(db: Database, workflow_id: str) -> tuple[int, int, int]:
    """(deliveries accepted, deliveries with a run, dead letters) of the workflow."""
    d = WebhookDelivery
    async with db.system_scope() as session:
        accepted = (
            await session.execute(
                select(func.count()).where(d.workflow_id == workflow_id, d.status.in_(("dispatched", "dead_letter")))
            )
        ).scalar_one()
        with_run = (
            await session.execute(select(func.count()).where(d.workflow_id == workflow_id, d.run_id.is_not(None)))
        ).scalar_one()
        letters = (
            await session.execute(select(func.count()).where(DeadLetter.workflow_id == workflow_id))
        ).scalar_one()
    return accepted, with_run, letters


async def _actions(db: Database, tenant_id: str) -> list[str]:
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        return list(
            (
                await session.execute(
                    select(AuditEvent.action).where(
                        AuditEvent.tenant_id == tenant_id, AuditEvent.action.like("dead_letter.%")
                    )
                )
            ).scalars()
        )


async def test_a_paused_workflows_delivery_lands_in_dead_letters_and_replays_after_resume(
    pg_tenant: TenantHandle, pg: Database
) -> None:
    workflow_id, webhook_id, first = await _workflow_with_a_run(pg_tenant)
    async with api_client(pg_tenant) as client:
        assert (await client.post(f"/api/v1/workflows/{workflow_id}/pause")).status_code == 200
    lost = await _lost(pg, first, age=7 * HOURS)
    recent = await _lost(pg, first, age=1 * HOURS)  # younger than the bound: not a dead letter yet

    report = await _sweep(pg_tenant)  # the default bound, six hours
    assert len(report["recorded"]) == 1, report
    (letter_id,) = report["recorded"]
    page = await _list(pg_tenant, "viewer")
    assert page["total"] == 1 and page["counts"] == {"open": 1}
    item = page["items"][0]
    assert item["source"] == "webhook" and item["delivery_id"] == lost.id and item["status"] == "open"
    assert item["reference"] == f"delivery:{lost.id}" and "paused" in item["reason"], item
    async with api_client(pg_tenant, "viewer") as client:
        detail = (await client.get(f"/api/v1/dead-letters/{letter_id}")).json()
        assert detail["payload"]["body"] == {"n": 0} and detail["payload"]["delivery_id"] == lost.id
        events = await client.get(f"/api/v1/webhooks/{webhook_id}/events", params={"status": "dead_letter"})
        assert [e["id"] for e in events.json()["items"]] == [lost.id]
        # A viewer reads but does not decide.
        assert (await client.post(f"/api/v1/dead-letters/{letter_id}/replay")).status_code == 403
    assert (await _sweep(pg_tenant, after_seconds=6 * HOURS))["recorded"] == {}  # recorded once
    # The dead letter is one failed-delivery event in Prefect (webhook_failures alert rules count it).
    [failed] = await eventually(lambda: _failure_events(lost.id))
    assert failed.resource["gorax.tenant"] == pg_tenant.id and failed.resource["gorax.webhook"] == webhook_id
    assert failed.payload == {"delivery_id": lost.id, "failure": "dead_letter", "reason": item["reason"]}

    async with api_client(pg_tenant, "operator") as client:
        blocked = await client.post(f"/api/v1/dead-letters/{letter_id}/replay")
        assert blocked.status_code == 409 and "paused" in blocked.json()["error"]["message"], blocked.text
    async with api_client(pg_tenant) as client:
        assert (await client.post(f"/api/v1/workflows/{workflow_id}/resume")).status_code == 200
    await asyncio.sleep(1.0)  # the resumed automation reaches Prefect's triggers service
    async with api_client(pg_tenant, "operator") as client:
        replayed = await client.post(f"/api/v1/dead-letters/{letter_id}/replay")
        assert replayed.status_code == 200, replayed.text
        fresh = replayed.json()["replay_delivery_id"]
        assert replayed.json()["status"] == "replayed" and fresh
        again = await client.post(f"/api/v1/dead-letters/{letter_id}/replay")
        assert again.status_code == 409, again.text
    (run,) = await eventually(lambda: _runs_of(workflow_id, fresh), timeout=120)
    assert run.parameters["trigger"]["body"] == {"n": 0} and run.parameters["trigger"]["replay_of"] == lost.id

    async def replay_run() -> Any:
        async with api_client(pg_tenant) as client:
            return (await client.get(f"/api/v1/dead-letters/{letter_id}")).json()["replay_run_id"]

    assert await eventually(replay_run, timeout=60) == str(run.id)
    assert (await _runs_of(workflow_id, lost.id)) == []  # the dead delivery itself never ran
    decided = (await _list(pg_tenant))["items"][0]
    assert decided["decided_by"].startswith("api_key:") and decided["status"] == "replayed", decided

    # Nothing dropped: every accepted delivery has a run or a dead letter, once the young one
    # (whose workflow is running again) is past the bound too.
    async with pg.system_scope() as session:
        young = await session.get(WebhookDelivery, recent.seq)
        assert young is not None
        young.dispatched_at = young.dispatched_at - timedelta(hours=10)
        await session.commit()
    await eventually(lambda: _linked_all(pg, workflow_id, exclude={recent.id}), timeout=60)
    report = await _sweep(pg_tenant)
    assert len(report["recorded"]) == 1  # Prefect took its event long ago and started nothing
    assert "started no run" in next(iter(report["recorded"].values()))
    accepted, with_run, letters = await _accounting(pg, workflow_id)
    assert (accepted, with_run, letters) == (4, 2, 2)
    assert accepted == with_run + letters
    assert sorted(await _actions(pg, pg_tenant.id)) == [
        "dead_letter.record",
        "dead_letter.record",
        "dead_letter.replay",
    ]


async def _linked_all(db: Database, workflow_id: str, exclude: set[str]) -> bool:
    d = WebhookDelivery
    async with db.system_scope() as session:
        rows = (
            await session.execute(
                select(d.id).where(d.workflow_id == workflow_id, d.status == "dispatched", d.run_id.is_(None))
            )
        ).all()
    return all(row.id in exclude for row in rows)


async def test_a_deleted_deployment_discard_bulk_and_tenant_isolation(
    pg_tenant: TenantHandle, pg_other: TenantHandle, pg: Database
) -> None:
    workflow_id, _webhook_id, first = await _workflow_with_a_run(pg_tenant)
    lost = [await _lost(pg, first, age=8 * HOURS) for _ in range(4)]
    # Linked before the deployment (and with it its not yet started runs) goes.
    await eventually(lambda: _linked_all(pg, workflow_id, exclude={d.id for d in lost}), timeout=60)
    async with pg.system_scope() as session:
        deployment_id = (await session.get(Workflow, workflow_id)).deployment_id  # type: ignore[union-attr]
    async with get_client() as prefect:
        await prefect.delete_deployment(UUID(deployment_id))

    report = await _sweep(pg_tenant)
    assert len(report["recorded"]) == 4
    assert all(f"deployment {deployment_id} no longer exists" in why for why in report["recorded"].values())
    ids = list(report["recorded"])

    # Another tenant sees none of them and can decide none of them.
    assert (await _list(pg_other))["total"] == 0
    async with api_client(pg_other) as other:
        assert (await other.get(f"/api/v1/dead-letters/{ids[0]}")).status_code == 404
        denied = await other.post(f"/api/v1/dead-letters/{ids[0]}/discard", json={"reason": "not mine"})
        assert denied.status_code == 404
        bulk = await other.post("/api/v1/dead-letters/bulk", json={"action": "discard", "ids": ids, "reason": "x"})
        assert bulk.status_code == 200 and bulk.json()["done"] == 0 and bulk.json()["failed"] == 4
        assert {r["error"] for r in bulk.json()["results"]} == {f"dead letter {i!r} not found" for i in ids}
        filtered = await other.post(
            "/api/v1/dead-letters/bulk", json={"action": "discard", "filter": {}, "reason": "x"}
        )
        assert filtered.json()["results"] == []
    assert (await _list(pg_tenant))["counts"] == {"open": 4}

    async with api_client(pg_tenant, "operator") as client:
        # A replay cannot succeed while the deployment is gone: each says why and stays open.
        tried = await client.post("/api/v1/dead-letters/bulk", json={"action": "replay", "ids": ids[:2]})
        assert tried.status_code == 200 and tried.json()["done"] == 0, tried.text
        assert all("no longer exists" in r["error"] for r in tried.json()["results"])
        # A discard needs a reason.
        bare = await client.post(f"/api/v1/dead-letters/{ids[0]}/discard", json={"reason": ""})
        assert bare.status_code == 422
        nothing = await client.post("/api/v1/dead-letters/bulk", json={"action": "discard", "ids": ids})
        assert nothing.status_code == 422
        one = await client.post(f"/api/v1/dead-letters/{ids[0]}/discard", json={"reason": "sender test event"})
        assert one.status_code == 200 and one.json()["status"] == "discarded", one.text
        twice = await client.post(f"/api/v1/dead-letters/{ids[0]}/discard", json={"reason": "again"})
        assert twice.status_code == 409
        rest = await client.post(
            "/api/v1/dead-letters/bulk",
            json={"action": "discard", "filter": {"workflow_id": workflow_id, "source": "webhook"}, "reason": "gone"},
        )
        assert rest.json()["done"] == 3 and rest.json()["failed"] == 0, rest.text
    page = await _list(pg_tenant, status="discarded")
    assert page["total"] == 4 and page["counts"] == {"discarded": 4}
    notes = {item["id"]: item["note"] for item in page["items"]}
    assert notes[ids[0]] == "sender test event" and {notes[i] for i in ids[1:]} == {"gone"}
    assert (await _list(pg_tenant, status="open"))["total"] == 0
    accepted, with_run, letters = await _accounting(pg, workflow_id)
    assert accepted == with_run + letters == 5
    actions = await _actions(pg, pg_tenant.id)
    assert actions.count("dead_letter.discard") == 4 and actions.count("dead_letter.record") == 1
    assert await _actions(pg, pg_other.id) == []
    assert {lost_one.id for lost_one in lost} == {
        item["delivery_id"] for item in (await _list(pg_tenant, source="webhook"))["items"]
    }


async def test_scheduled_runs_late_or_crashed_become_dead_letters_and_replay(
    pg_tenant: TenantHandle, pg: Database
) -> None:
    workflow_id, _webhook_id, _first = await _workflow_with_a_run(pg_tenant)
    async with pg.system_scope() as session:
        deployment_id = UUID((await session.get(Workflow, workflow_id)).deployment_id)  # type: ignore[union-attr, arg-type]
    tags = [f"tenant:{pg_tenant.id}", f"workflow:{workflow_id}", "trigger:schedule", "gorax"]
    trigger = {"scheduled_at": "2026-01-01T00:00:00+00:00", "schedule_id": "s1"}
    async with get_client() as prefect:
        # No worker may start them (a worker of this pool runs once another test started it):
        # the tenant's work queue is paused, as when no worker serves it.
        deployment = await prefect.read_deployment(deployment_id)
        assert deployment.work_queue_name and deployment.work_pool_name
        queue = await prefect.read_work_queue_by_name(deployment.work_queue_name, deployment.work_pool_name)
        await prefect.update_work_queue(queue.id, is_paused=True)
        late = await prefect.create_flow_run_from_deployment(
            deployment_id, parameters={"trigger": trigger}, tags=tags, state=Late()
        )
        crashed = await prefect.create_flow_run_from_deployment(
            deployment_id, parameters={"trigger": trigger}, tags=tags
        )
        # It crashed, ran again by the workers' rerun rule, and crashed again: past the one
        # rerun GORAX_WORKER_CRASH_RETRIES allows, the rule has given up on it.
        for state in (
            Crashed(message="worker process exited"),
            AwaitingRetry(),
            Crashed(message="worker process exited"),
        ):
            await prefect.set_flow_run_state(crashed.id, state, force=True)
        # A run another trigger started is not a schedule's: it never becomes a schedule dead letter.
        manual = await prefect.create_flow_run_from_deployment(
            deployment_id, tags=[t for t in tags if t != "trigger:schedule"]
        )
        await prefect.set_flow_run_state(manual.id, Crashed(message="x"), force=True)
    await asyncio.sleep(0.5)
    assert (await _sweep(pg_tenant))["recorded"] == {}  # not six hours old
    report = await _sweep(pg_tenant, after_seconds=0)
    assert len(report["recorded"]) == 2, report
    page = await _list(pg_tenant, source="schedule")
    by_run = {item["flow_run_id"]: item for item in page["items"]}
    assert set(by_run) == {str(late.id), str(crashed.id)}
    assert "Late" in by_run[str(late.id)]["reason"] and "worker process exited" in by_run[str(crashed.id)]["reason"]
    async with get_client() as prefect:
        moved = await prefect.read_flow_run(late.id)
        assert moved.state is not None and moved.state.type.value == "CANCELLED"  # no worker can start it now

    async with api_client(pg_tenant, "operator") as client:
        done = await client.post(
            "/api/v1/dead-letters/bulk", json={"action": "replay", "ids": [i["id"] for i in page["items"]]}
        )
    assert done.status_code == 200 and done.json()["done"] == 2, done.text
    new_runs = {r["replay_run_id"] for r in done.json()["results"]}
    runs = {str(r.id): r for r in await flow_runs(workflow_id)}
    assert new_runs <= set(runs)
    for run_id in new_runs:
        assert "trigger:schedule" in runs[run_id].tags and runs[run_id].parameters["trigger"] == trigger
    assert (await _sweep(pg_tenant, after_seconds=0))["recorded"] == {}  # the crashed one is recorded once
