"""Human approval end to end: a real API, Prefect server and warm worker; runs suspend and resume.

Every run has an ``http.request`` node before the approval, counted by a loopback peer: it must
run exactly once although the flow body starts again after each resume.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import httpx
import pytest

from api.auth.permissions import Role
from tests.api.conftest import new_tenant
from tests.api.human_tasks.conftest import (
    add_smtp_credential,
    approval_graph,
    audit_events,
    execution_status,
    open_task,
    start_run,
    start_worker,
    steps_by_node,
)

pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize("choice, branch, other", [("approved", "grant", "explain"), ("rejected", "explain", "grant")])
async def test_decision_resumes_the_run_on_its_branch(tenant, worker, iam, choice, branch, other):
    async with tenant.client() as admin, tenant.client(Role.OPERATOR) as operator:
        execution_id = await start_run(admin, approval_graph(), iam.url)
        task = await open_task(admin, execution_id)
        assert task["title"] == "Grant ada access to billing?"
        assert task["data"]["trigger"] == {"user": "ada", "system": "billing"}
        await execution_status(admin, execution_id, "paused")

        # Operators are not assignees of role:admin; the decision is the admin's, once.
        denied = await operator.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": choice})
        assert denied.status_code == 403, denied.text
        bad = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": "maybe"})
        assert bad.status_code == 422 and "maybe" in bad.json()["error"]["message"]
        decided = await admin.post(
            f"/api/v1/human-tasks/{task['id']}/decide", json={"value": choice, "comment": "ok by me"}
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["status"] == "decided"
        again = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": choice})
        assert again.status_code == 409

        execution = await execution_status(admin, execution_id, "completed", "failed")
        assert execution["status"] == "completed", execution
        assert execution["output"] == {"decision": choice}
        steps = steps_by_node(execution)
        assert steps[branch]["status"] == "completed"
        assert steps[other]["status"] == "skipped"
        assert steps["approve"]["output"]["decision"] == choice
        assert steps["approve"]["output"]["comment"] == "ok by me"

        entries = await audit_events(admin, action="human_task.decide")
    # The decision and both refusals are audited; a refusal's entry stays although its request
    # failed, naming who tried and why it was refused.
    by_outcome = {e["outcome"]: e for e in entries if e["resource_id"] == task["id"]}
    assert sorted(by_outcome) == ["conflict", "denied", "success"], entries
    assert by_outcome["success"]["details"]["data"]["trigger"]["user"] == "ada"
    denied = by_outcome["denied"]
    assert denied["actor_type"] == "api_key" and denied["actor_id"] != by_outcome["success"]["actor_id"]
    assert denied["details"]["reason"] == "not an assignee of this task"
    assert by_outcome["conflict"]["details"]["reason"] == "the task is already decided"
    assert by_outcome["conflict"]["actor_id"] == by_outcome["success"]["actor_id"]
    assert len(iam.received("POST", "/requests")) == 1
    grants = iam.received("POST", "/grants")
    assert len(grants) == (1 if choice == "approved" else 0)
    if grants:
        assert grants[0].json()["approved_by"]


async def test_worker_restart_while_suspended(tenant, pool, api, iam):
    first = start_worker(pool, api.url)
    await first.started()
    async with tenant.client() as admin:
        execution_id = await start_run(admin, approval_graph(), iam.url)
        task = await open_task(admin, execution_id)
        await execution_status(admin, execution_id, "paused")
        first.stop()
        second = start_worker(pool, api.url)
        try:
            await second.started()
            response = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": "approved"})
            assert response.status_code == 200, response.text
            execution = await execution_status(admin, execution_id, "completed", "failed")
        finally:
            second.stop()
    assert execution["status"] == "completed" and execution["output"] == {"decision": "approved"}
    assert len(iam.received("POST", "/requests")) == 1
    assert len(iam.received("POST", "/grants")) == 1


def _lateness(task: dict[str, Any], at: str, after_seconds: float) -> float:
    """How long after its due time (``after_seconds`` past the task's creation) ``at`` came."""
    due = datetime.fromisoformat(task["created_at"]) + timedelta(seconds=after_seconds)
    return (datetime.fromisoformat(at) - due).total_seconds()


async def test_escalation_then_automatic_decision_on_time(tenant, worker, api, iam, mailbox):
    async with tenant.client() as admin:
        await add_smtp_credential(admin, mailbox.port)
        graph = approval_graph(
            escalation=[{"after": "3s", "notify": [tenant.email]}, {"after": "5s", "decide": "rejected"}],
            channels=["inbox", "email"],
            email_credential="mail",
        )
        execution_id = await start_run(admin, graph, iam.url)
        task = await open_task(admin, execution_id)
        # Nobody asks the API to act: its timer escalates and decides when each step is due.
        execution = await execution_status(admin, execution_id, "completed", "failed")
        detail = (await admin.get(f"/api/v1/human-tasks/{task['id']}")).json()
        entries = await audit_events(admin, resource_type="human_task")
    assert execution["output"] == {"decision": "rejected"}
    assert detail["decided_by"] == "system:timeout" and detail["status"] == "decided"
    escalation = [n for n in detail["notifications"] if n["reason"] == "escalation"]
    assert [n["reason"] for n in detail["notifications"]] == ["assigned", "escalation"]
    # On time: within 2 s of each step's due time (a once-a-minute scan was up to 58 s late).
    assert 0 <= _lateness(task, escalation[0]["at"], 3) < 2, escalation
    assert 0 <= _lateness(task, detail["decided_at"], 5) < 2, detail["decided_at"]
    # Both automatic actions are audited, by the system, with their reason.
    mine = [e for e in entries if e["resource_id"] == task["id"]]
    escalated = [e for e in mine if e["action"] == "human_task.escalate"]
    decided = [e for e in mine if e["action"] == "human_task.decide"]
    assert len(escalated) == 1 and len(decided) == 1, mine
    assert escalated[0]["actor_type"] == "system" and escalated[0]["actor_id"] == "system"
    assert escalated[0]["details"]["reason"] == "nobody decided within 3s"
    assert escalated[0]["details"]["notified"] == [tenant.email]
    assert decided[0]["actor_type"] == "system" and decided[0]["after"] == {"decision": "rejected"}
    assert decided[0]["details"]["reason"] == "nobody decided within 5s"
    # Assignment went to the admins (role:admin), the escalation to the named address; each
    # mail carries a signed link that leads to the decision page.
    recipients = [sorted(m.rcpt_tos) for m in mailbox.messages]
    assert [tenant.email] in recipients and len(recipients) == 2
    body = message_from_bytes(mailbox.messages[-1].content, policy=policy.default).get_content()
    link = body[body.index("http") :].split()[0]
    # The link carries the API's public URL; follow its path on the test server.
    link = api.url + link[link.index("/api/v1/") :]
    async with httpx.AsyncClient() as client:
        followed = await client.get(link, follow_redirects=False)
        forged = await client.get(link[:-4] + "0000", follow_redirects=False)
    assert followed.status_code == 302 and followed.headers["location"].endswith(task["id"])
    assert forged.status_code == 404
    assert len(iam.received("POST", "/requests")) == 1


async def test_timeout_expires_the_task_and_fails_the_run(tenant, worker, iam):
    async with tenant.client() as admin:
        execution_id = await start_run(admin, approval_graph(timeout="3s", escalation=[]), iam.url)
        task = await open_task(admin, execution_id)
        execution = await execution_status(admin, execution_id, "completed", "failed")
        detail = (await admin.get(f"/api/v1/human-tasks/{task['id']}")).json()
        entries = await audit_events(admin, action="human_task.expire")
    assert execution["status"] == "failed"
    assert "before it expired" in steps_by_node(execution)["approve"]["error"]["message"]
    assert detail["status"] == "expired" and 0 <= _lateness(task, detail["decided_at"], 3) < 2
    [entry] = [e for e in entries if e["resource_id"] == task["id"]]
    assert entry["actor_type"] == "system"
    assert entry["details"]["reason"] == "nobody decided within the timeout (3s)"


async def test_cancelling_the_run_cancels_its_task(tenant, worker, iam):
    async with tenant.client() as admin:
        execution_id = await start_run(admin, approval_graph(), iam.url)
        task = await open_task(admin, execution_id)
        await execution_status(admin, execution_id, "paused")
        response = await admin.post(f"/api/v1/executions/{execution_id}/cancel")
        assert response.status_code == 200, response.text
        detail = (await admin.get(f"/api/v1/human-tasks/{task['id']}")).json()
        assert detail["status"] == "cancelled"
        late = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": "approved"})
        assert late.status_code == 409


async def test_other_tenants_see_nothing(tenant, database, api, worker, iam):
    other = await new_tenant(database, api.url)
    async with tenant.client() as admin, other.client() as stranger:
        execution_id = await start_run(admin, approval_graph(), iam.url)
        task = await open_task(admin, execution_id)
        assert (await stranger.get(f"/api/v1/human-tasks/{task['id']}")).status_code == 404
        assert (
            await stranger.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": "approved"})
        ).status_code == 404
        assert (await stranger.get("/api/v1/human-tasks")).json()["items"] == []
        await admin.post(f"/api/v1/executions/{execution_id}/cancel")
