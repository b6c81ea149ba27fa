"""Alert rules and error workflows against a real Prefect server, its automations and peers.

Runs fail for real in Prefect (their state set Failed through its API, so Prefect itself emits
``prefect.flow-run.Failed`` with the run's tags); the alert automations Prefect holds fire and
post back to the API, which sends to the rule's channel: an HTTP peer, a Slack stand-in, SMTP.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from uuid import UUID

import httpx

from tests.api.alerts.conftest import Mailbox, client_of
from tests.api.conftest import TenantHandle
from tests.peers import HttpPeer


def _graph(name: str) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": name,
        "nodes": [
            {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}},
            {
                "id": "out",
                "type": "control.output",
                "position": {"x": 0, "y": 100},
                "config": {"value": "{{ trigger }}"},
            },
        ],
        "edges": [{"id": "e1", "source": "start", "target": "out"}],
    }


async def _workflow(client: httpx.AsyncClient, *, publish: bool = False) -> str:
    g = _graph(f"wf-{uuid.uuid4().hex[:6]}")
    response = await client.post("/api/v1/workflows", json={"name": g["name"], "graph": g})
    assert response.status_code == 201, response.text
    workflow_id = response.json()["id"]
    if publish:
        response = await client.post(f"/api/v1/workflows/{workflow_id}/publish", json={})
        assert response.status_code == 201, response.text
    return str(workflow_id)


async def _failed_run(tenant_id: str, workflow_id: str, *, trigger: Any = None, message: str = "boom") -> str:
    """A run of the workflow that Prefect sees go Running, then Failed."""
    from prefect.client.orchestration import get_client
    from prefect.states import Failed, Running

    async with get_client() as client:
        flow_id = await client.create_flow_from_name("gorax-alerts-test")
        response = await client._client.post(
            "/flow_runs/",
            json={
                "flow_id": str(flow_id),
                "name": f"run-{uuid.uuid4().hex[:6]}",
                "tags": [f"tenant:{tenant_id}", f"workflow:{workflow_id}", "gorax"],
                "parameters": {"trigger": trigger},
            },
        )
        run_id = UUID(response.json()["id"])
        await client.set_flow_run_state(run_id, Running(), force=True)
        await client.set_flow_run_state(run_id, Failed(message=message), force=True)
    return str(run_id)


async def _eventually(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not met in {timeout}s (last: {result!r})")
        await asyncio.sleep(0.3)


async def _history(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/alerts")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def _automations(name: str) -> list[Any]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return list(await client.read_automations_by_name(name))


def _rule(name: str, channel: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": name, "kind": "failure", "channel": channel, **fields}


async def test_a_burst_sends_one_grouped_alert_and_none_during_the_cool_down(
    alerts_tenant: TenantHandle, alerts_db: Any, alerts_api: Any, hook_peer: HttpPeer
) -> None:
    from tests.api.conftest import new_tenant

    other = await new_tenant(alerts_db, alerts_api.url)
    a_path, b_path, c_path = (f"/{p}-{uuid.uuid4().hex[:6]}" for p in "abc")
    async with client_of(alerts_tenant) as a, client_of(other) as b:
        workflow_id = await _workflow(a)
        response = await a.post(
            "/api/v1/alert-rules",
            json=_rule(
                "orders burst",
                {"type": "webhook", "url": hook_peer.url + a_path},
                kind="failure_burst",
                threshold=3,
                window_minutes=5,
                workflow_id=workflow_id,
                cooldown_minutes=60,
            ),
        )
        assert response.status_code == 201, response.text
        rule = response.json()
        assert len(await _automations(f"gorax-alert-{rule['id']}")) == 1
        # Tenant B alerts on every failure of its own workflows.
        response = await b.post(
            "/api/v1/alert-rules", json=_rule("all", {"type": "webhook", "url": hook_peer.url + b_path})
        )
        assert response.status_code == 201, response.text
        b_rule = response.json()
        await asyncio.sleep(2)  # Prefect's triggers service takes up new automations a moment later

        burst = [await _failed_run(alerts_tenant.id, workflow_id, message=f"failure {i}") for i in range(3)]
        [sent] = await _eventually(lambda: asyncio.sleep(0, hook_peer.received("POST", a_path)))
        body = sent.json()
        assert body["rule"] == {"id": rule["id"], "name": "orders burst", "kind": "failure_burst"}
        assert sorted(r["id"] for r in body["runs"]) == sorted(burst)
        assert "3 run(s) failed 3 times within 5 min" in body["subject"]

        # More failures within the window: Prefect's trigger waits out its window, nothing is sent.
        for i in range(3):
            await _failed_run(alerts_tenant.id, workflow_id, message=f"again {i}")

        # A rule on every failure of another workflow: the first alert is sent, the ones within
        # its cool-down are recorded as suppressed.
        single = await _workflow(a)
        response = await a.post(
            "/api/v1/alert-rules",
            json=_rule(
                "each", {"type": "webhook", "url": hook_peer.url + c_path}, workflow_id=single, cooldown_minutes=60
            ),
        )
        each = response.json()
        await asyncio.sleep(2)
        for i in range(3):
            await _failed_run(alerts_tenant.id, single, message=f"single {i}")

        async def each_history() -> list[dict[str, Any]] | None:
            events = [e for e in await _history(a) if e["rule_id"] == each["id"]]
            return events if len(events) == 3 else None

        events = await _eventually(each_history)
        assert sorted(e["status"] for e in events) == ["sent", "suppressed", "suppressed"]
        await asyncio.sleep(2)
        assert len(hook_peer.received("POST", a_path)) == 1
        assert len(hook_peer.received("POST", c_path)) == 1

        # Tenant B saw none of it, and cannot see A's rule or alerts.
        assert hook_peer.received("POST", b_path) == []
        assert await _history(b) == []
        assert (await b.get(f"/api/v1/alert-rules/{rule['id']}")).status_code == 404
        assert [r["id"] for r in (await b.get("/api/v1/alert-rules")).json()["items"]] == [b_rule["id"]]
        assert (await b.delete(f"/api/v1/alert-rules/{rule['id']}")).status_code == 404

        # Deleting the rule deletes its automation.
        assert (await a.delete(f"/api/v1/alert-rules/{rule['id']}")).status_code == 204
        assert await _automations(f"gorax-alert-{rule['id']}") == []


async def test_the_error_workflow_runs_with_the_failed_runs_context(
    alerts_tenant: TenantHandle, alerts_db: Any, alerts_api: Any
) -> None:
    from tests.api.conftest import new_tenant

    other = await new_tenant(alerts_db, alerts_api.url)
    async with client_of(alerts_tenant) as a, client_of(other) as b:
        handler = await _workflow(a, publish=True)
        source = await _workflow(a)
        foreign = await _workflow(b)
        url = f"/api/v1/workflows/{source}/error-workflow"
        response = await a.put(url, json={"on_failure_workflow_id": handler})
        assert response.status_code == 200, response.text
        assert (await a.get(url)).json() == {"workflow_id": source, "on_failure_workflow_id": handler}
        # No cycles (the handler's failure must not lead back), no self, no other tenant's workflow.
        for target, owner in ((source, handler), (source, source), (foreign, source)):
            response = await a.put(f"/api/v1/workflows/{owner}/error-workflow", json={"on_failure_workflow_id": target})
            assert response.status_code == 422, response.text
            assert response.json()["error"]["details"]["errors"][0]["path"] == "on_failure_workflow_id"
        assert (await b.get(url)).status_code == 404

        failed = await _failed_run(
            alerts_tenant.id, source, trigger={"order": 7}, message="node 'call' failed: HTTP 500"
        )
        from tests.api.triggers.conftest import flow_runs

        [run] = await _eventually(lambda: flow_runs(handler))
        assert f"tenant:{alerts_tenant.id}" in run.tags and "trigger:error" in run.tags
        context = run.parameters["trigger"]
        assert context["run_id"] == failed and context["workflow"]["id"] == source
        assert context["error"] == "node 'call' failed: HTTP 500" and context["input"] == {"order": 7}
        assert context["status"] == "failed" and set(context["failed_node"]) == {"id", "type"}

        audit = (await a.get("/api/v1/audit", params={"action": "workflow.error_workflow.run"})).json()["items"]
        assert [e["details"]["failed_run_id"] for e in audit] == [failed]

        # Clearing it removes the automation: the next failure starts nothing.
        response = await a.put(url, json={"on_failure_workflow_id": None})
        assert response.status_code == 200 and await _automations(f"gorax-on-failure-{source}") == []


async def test_send_test_alert_reaches_slack_and_email_and_roles_are_checked(
    alerts_tenant: TenantHandle, slack_peer: HttpPeer, mailbox: Mailbox
) -> None:
    async with (
        client_of(alerts_tenant) as admin,
        client_of(alerts_tenant, "viewer") as viewer,
        client_of(alerts_tenant, "operator") as operator,
    ):
        for body in (
            {"name": "team_slack", "type": "slack-credentials", "values": {"token": "xoxb-alerts-test"}},
            {
                "name": "mail",
                "type": "smtp-server",
                "values": {
                    "host": "127.0.0.1",
                    "port": mailbox.port,
                    "security": "none",
                    "from_address": "gx@example.test",
                },
            },
        ):
            assert (await admin.post("/api/v1/credentials", json=body)).status_code == 201
        slack = await operator.post(
            "/api/v1/alert-rules",
            json=_rule(
                "slack",
                {"type": "slack", "credential": "team_slack", "channel": "#ops"},
                kind="long_running",
                seconds=600,
            ),
        )
        assert slack.status_code == 201, slack.text
        mail = await admin.post(
            "/api/v1/alert-rules",
            json=_rule("mail", {"type": "email", "credential": "mail", "to": ["ops@example.test"]}),
        )
        assert mail.status_code == 201, mail.text

        response = await operator.post(f"/api/v1/alert-rules/{slack.json()['id']}/test")
        assert response.status_code == 200 and response.json()["status"] == "sent", response.text
        [posted] = [r for r in slack_peer.received("POST", "/api/chat.postMessage") if r.json()["channel"] == "#ops"]
        assert posted.headers["authorization"] == "Bearer xoxb-alerts-test"
        assert "[Gorax test alert] slack" in posted.json()["text"]
        assert "xoxb" not in response.text

        response = await admin.post(f"/api/v1/alert-rules/{mail.json()['id']}/test")
        assert response.status_code == 200 and response.json()["status"] == "sent", response.text
        [message] = mailbox.messages
        assert message.rcpt_tos == ["ops@example.test"] and b"[Gorax test alert] mail" in message.content

        # Viewers do not manage alerts; incomplete rules are refused naming the field.
        assert (await viewer.get("/api/v1/alert-rules")).status_code == 403
        response = await admin.post(
            "/api/v1/alert-rules",
            json=_rule("x", {"type": "webhook", "url": "http://127.0.0.1:9/x"}, kind="failure_burst"),
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"]["errors"][0]["path"] == "threshold"
        assert [e["test"] for e in (await admin.get("/api/v1/alerts")).json()["items"]] == [True, True]
