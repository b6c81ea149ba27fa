"""The human-task timer: due actions fire on time, once across API replicas, and after a restart.

Two API servers share one PostgreSQL database (replicas); tasks are recorded through the
worker's internal endpoint for real (pending) Prefect flow runs, and e-mails go to a loopback
SMTP server. No run needs to be paused for this: what is checked is when and how often the
escalation steps act.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from api.app import create_app
from api.db.engine import Database
from tests.api.conftest import (
    ServerThread,
    TenantHandle,
    api_settings,
    make_settings,
    new_tenant,
    session_prefect,
)
from tests.api.human_tasks.conftest import add_smtp_credential, audit_events, wait_for

pytestmark = pytest.mark.timeout(300)
TOKEN = "gxw_timer-" + uuid.uuid4().hex


@flow(name="gorax-human-task-timer-test")
def _waiting_run() -> None:
    """Never runs: its flow runs stay pending, standing in for runs waiting for a decision."""


def _replica(database_url: str) -> ServerThread:
    settings = make_settings(
        database_url, api=api_settings(rate_limit_api=100_000), worker_token=TOKEN, prefect=session_prefect()
    )
    return ServerThread(create_app(settings)).start()


@pytest.fixture
async def pg(postgres_url: str, prefect_server: Any):
    db = Database(postgres_url)
    yield db
    await db.dispose()


async def _record(url: str, tenant: TenantHandle, **changes: Any) -> dict[str, Any]:
    async with get_client() as client:
        run = await client.create_flow_run(_waiting_run)
    body = {
        "tenant_id": tenant.id,
        "flow_run_id": str(run.id),
        "node_id": "approve",
        "node_key": "approval-approve",
        "title": "Go on?",
        "assignees": ["role:admin"],
        "options": [{"label": "Approve", "value": "approved"}, {"label": "Reject", "value": "rejected"}],
        **changes,
    }
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as internal:
        response = await internal.post("/api/v1/internal/human-tasks", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _late(task: dict[str, Any], at: str, after_seconds: float) -> float:
    due = datetime.fromisoformat(task["created_at"]) + timedelta(seconds=after_seconds)
    return (datetime.fromisoformat(at) - due).total_seconds()


async def test_due_actions_fire_on_time_and_once_across_replicas(pg, postgres_url, mailbox):
    first = _replica(postgres_url)
    second = None
    try:
        tenant = await new_tenant(pg, first.url)
        async with tenant.client() as admin:
            await add_smtp_credential(admin, mailbox.port)
            task = await _record(
                first.url,
                tenant,
                channels=["inbox", "email"],
                email_credential="mail",
                escalation=[
                    {"after_seconds": 3, "notify": ["ops@people.test"], "assign": ["lead@people.test"]},
                    {"after_seconds": 4, "decide": "rejected"},
                ],
            )
            # A second replica starts after the task exists: both timers wait for the same due times.
            second = _replica(postgres_url)

            async def decided() -> dict[str, Any] | None:
                detail = (await admin.get(f"/api/v1/human-tasks/{task['id']}")).json()
                return detail if detail["status"] == "decided" else None

            detail = await wait_for("the automatic decision", decided, timeout=30)
            await asyncio.sleep(1.5)  # a second replica acting late would have done so by now
            entries = [
                e for e in await audit_events(admin, resource_type="human_task") if e["resource_id"] == task["id"]
            ]
            detail = (await admin.get(f"/api/v1/human-tasks/{task['id']}")).json()
    finally:
        for server in (first, second):
            if server is not None:
                server.stop()
    actions = sorted(e["action"] for e in entries if e["actor_type"] == "system")
    assert actions == ["human_task.decide", "human_task.escalate"], entries
    escalations = [n for n in detail["notifications"] if n["reason"] == "escalation"]
    assert len(escalations) == 1, detail["notifications"]
    assert 0 <= _late(task, escalations[0]["at"], 3) < 2
    assert 0 <= _late(task, detail["decided_at"], 4) < 2
    assert detail["decision"] == "rejected" and detail["decided_by"] == "system:timeout"
    assert detail["assignees"] == ["role:admin", "lead@people.test"]
    # One mail when the task was assigned, one for the escalation: none twice.
    assert sorted(sorted(m.rcpt_tos) for m in mailbox.messages) == [
        [tenant.email],
        ["lead@people.test", "ops@people.test"],
    ]


async def test_a_due_action_fires_after_a_restart(pg, postgres_url):
    server = _replica(postgres_url)
    restarted = None
    try:
        tenant = await new_tenant(pg, server.url)
        task = await _record(server.url, tenant, escalation=[{"after_seconds": 3, "notify": ["ops@people.test"]}])
        server.stop()  # down before the step is due, and still down when it is
        due = datetime.fromisoformat(task["created_at"]) + timedelta(seconds=3)
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 1)
        stopped_until = datetime.now(UTC)
        restarted = _replica(postgres_url)
        ready = datetime.now(UTC)
        async with replace(tenant, base_url=restarted.url).client() as admin:

            async def escalated() -> dict[str, Any] | None:
                detail = (await admin.get(f"/api/v1/human-tasks/{task['id']}")).json()
                return detail if detail["escalation_done"] == 1 else None

            detail = await wait_for("the escalation after the restart", escalated, timeout=30)
    finally:
        if restarted is not None:
            restarted.stop()
    [escalation] = [n for n in detail["notifications"] if n["reason"] == "escalation"]
    fired = datetime.fromisoformat(escalation["at"])
    # Not while the API was down; at once when it was back (the due time is in the database).
    assert stopped_until <= fired and (fired - ready).total_seconds() < 2
    assert detail["viewers"] == ["ops@people.test"]
