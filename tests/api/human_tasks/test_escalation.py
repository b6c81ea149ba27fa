"""Escalation hands a task to new deciders and shows it to the people it notifies."""

from __future__ import annotations

import pytest

from tests.api.human_tasks.conftest import (
    approval_graph,
    audit_events,
    execution_status,
    member_client,
    open_task,
    start_run,
    wait_for,
)

pytestmark = pytest.mark.timeout(600)


async def test_escalation_assigns_deciders_and_shows_the_task_to_those_it_notifies(tenant, worker, iam):
    async with tenant.client() as admin:
        operator_email, operator = await member_client(admin, "operator")
        viewer_email, viewer = await member_client(admin, "viewer")
        async with operator, viewer:
            graph = approval_graph(escalation=[{"after": "3s", "notify": [viewer_email], "assign": [operator_email]}])
            execution_id = await start_run(admin, graph, iam.url)
            task = await open_task(admin, execution_id)
            url = f"/api/v1/human-tasks/{task['id']}"
            # Before the escalation neither of them may see the task, nor may the operator decide.
            assert (await operator.get(url)).status_code == 403
            assert (await viewer.get(url)).status_code == 403
            assert (await operator.post(f"{url}/decide", json={"value": "approved"})).status_code == 403

            async def escalated() -> dict | None:
                detail = (await admin.get(url)).json()
                return detail if detail["escalation_done"] == 1 else None

            detail = await wait_for("the escalation", escalated, timeout=30)
            assert detail["assignees"] == ["role:admin", operator_email]
            assert detail["viewers"] == [viewer_email]
            # The notified viewer sees the task (in the inbox and opened) but cannot decide it.
            listed = (await viewer.get("/api/v1/human-tasks", params={"status": "open"})).json()["items"]
            assert [t["id"] for t in listed] == [task["id"]]
            assert (await viewer.get(url)).status_code == 200
            assert (await viewer.post(f"{url}/decide", json={"value": "approved"})).status_code == 403
            # The assigned operator sees and decides it; the run goes on with that decision.
            listed = (await operator.get("/api/v1/human-tasks", params={"status": "open"})).json()["items"]
            assert [t["id"] for t in listed] == [task["id"]]
            decided = await operator.post(f"{url}/decide", json={"value": "approved", "comment": "mine now"})
            assert decided.status_code == 200, decided.text
            assert decided.json()["decided_by"] == operator_email
        execution = await execution_status(admin, execution_id, "completed", "failed")
        entries = [e for e in await audit_events(admin, resource_type="human_task") if e["resource_id"] == task["id"]]
    assert execution["output"] == {"decision": "approved"}
    [escalation] = [e for e in entries if e["action"] == "human_task.escalate"]
    assert escalation["details"]["assigned"] == [operator_email]
    assert escalation["details"]["notified"] == [viewer_email]
    assert len(iam.received("POST", "/grants")) == 1


async def test_assign_must_name_people_or_roles(tenant):
    async with tenant.client() as admin:
        graph = approval_graph(escalation=[{"after": "1h", "assign": ["role:boss", "bob"]}])
        created = await admin.post("/api/v1/workflows", json={"name": graph["name"], "graph": graph})
        assert created.status_code == 201, created.text
        published = await admin.post(f"/api/v1/workflows/{created.json()['id']}/publish", json={})
    assert published.status_code == 422, published.text
    errors = published.json()["error"]["details"]["errors"]
    by_path = {e["path"]: e for e in errors}
    assert set(by_path) == {"config.escalation[0].assign[0]", "config.escalation[0].assign[1]"}, errors
    assert "'role:boss' names no role" in by_path["config.escalation[0].assign[0]"]["message"]
    assert "'bob' is neither an e-mail address" in by_path["config.escalation[0].assign[1]"]["message"]
    assert all(e["node_id"] == "approve" for e in errors)
