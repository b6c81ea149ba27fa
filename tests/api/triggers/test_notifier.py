"""The shared deployment-notifier example started by signed webhooks, run by a real worker."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import pytest

from api.webhooks.dispatcher import tenant_related
from tests.api.conftest import TenantHandle
from tests.api.triggers.conftest import (
    add_secret,
    api_client,
    eventually,
    flow_runs,
    publish_new,
    webhook_urls,
)
from tests.examples import EXAMPLES_DIR
from tests.peers import HttpPeer, PeerResponse

EXAMPLE = EXAMPLES_DIR / "deployment-notifier.json"
SECRET = "gh-notifier-secret"


def _github(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    mac = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {
        "X-Hub-Signature-256": f"sha256={mac}",
        "Content-Type": "application/json",
        "X-GitHub-Delivery": str(uuid.uuid4()),
    }


@pytest.mark.timeout(900)  # a worker and deploys on a loaded machine
async def test_deployment_notifier_end_to_end(
    run_tenant: TenantHandle, chat_peer: HttpPeer, http_peer: HttpPeer
) -> None:
    chat_peer.route(
        "POST", "/api/chat.postMessage", PeerResponse(200, {"ok": True, "channel": "C0DEPLOY", "ts": "1700000000.1"})
    )
    http_peer.route("POST", "/incidents", PeerResponse(201, {"id": "inc-1"}))
    g = json.loads(EXAMPLE.read_text())
    g["name"] = f"notifier-{uuid.uuid4().hex[:6]}"
    async with api_client(run_tenant) as client:
        await add_secret(client, "github_webhook", SECRET)
        await add_secret(client, "team_slack", "xoxb-test-token", type_="slack-credentials", field="token")
        response = await client.post(
            "/api/v1/credentials", json={"name": "pager", "type": "github-token", "values": {"token": "pager-token"}}
        )
        assert response.status_code == 201, response.text
        response = await client.post("/api/v1/variables", json={"name": "PAGER_URL", "value": http_peer.url})
        assert response.status_code in (200, 201), response.text
        workflow_id = await publish_new(client, g)
        url = (await webhook_urls(client, workflow_id))["hook"]["url"]

        ignored, headers = _github({"repo": "gorax", "environment": "dev", "status": "success"})
        response = await client.post(url, content=ignored, headers=headers)
        assert response.status_code == 200 and response.json()["filtered"] is True

        success = {"repo": "gorax", "sha": "abc123", "environment": "production", "status": "success"}
        raw, headers = _github(success)
        response = await client.post(url, content=raw, headers=headers)
        assert response.status_code == 202, response.text

        async def completed() -> Any:
            runs = [r for r in await flow_runs(workflow_id) if r.state and r.state.is_final()]
            return runs[0] if runs else None

        run = await eventually(completed, timeout=120)
        assert run.state.is_completed(), run.state
        assert run.parameters["trigger"]["body"] == success
        assert run.parameters["trigger_node"] == "hook"
        detail = (await client.get(f"/api/v1/executions/{run.id}")).json()
        assert detail["output"] == {"status": "success", "announced": True}
        posted = chat_peer.received("POST", "/api/chat.postMessage")
        assert posted and "gorax abc123 is live on production" in posted[-1].body.decode()
        assert not http_peer.received("POST", "/incidents")

        failure = {"repo": "gorax", "sha": "def456", "environment": "staging", "status": "failure"}
        raw, headers = _github(failure)
        response = await client.post(
            url, content=raw, headers=headers, params={"wait": "true", "timeout": 90}, timeout=120
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "failure", "announced": False}
        paged = http_peer.received("POST", "/incidents")
        assert len(paged) == 1 and paged[0].headers.get("authorization") == "Token pager-token"
        assert paged[0].json()["title"] == "Deploy of gorax failed"
        # The synchronous delivery started exactly one run, not a second one via the automation.
        runs = await flow_runs(workflow_id)
        assert len(runs) == 2


@pytest.mark.timeout(900)
async def test_event_trigger_starts_a_run_from_a_prefect_event(run_tenant: TenantHandle) -> None:
    from prefect.client.orchestration import get_client

    name = f"orders-{uuid.uuid4().hex[:6]}"
    g = {
        "format": "gorax/graph@1",
        "name": name,
        "nodes": [
            {
                "id": "on_order",
                "type": "trigger.event",
                "position": {"x": 0, "y": 0},
                "config": {
                    "event": f"{name}.created",
                    "resource": {"prefect.resource.id": "acme.order.*"},
                    "filter": "trigger.payload.total > 10",
                },
            },
            {
                "id": "out",
                "type": "control.output",
                "position": {"x": 0, "y": 100},
                "config": {"value": {"total": "{{ trigger.payload.total }}"}},
            },
        ],
        "edges": [{"id": "e1", "source": "on_order", "target": "out"}],
    }
    async with api_client(run_tenant) as client:
        workflow_id = await publish_new(client, g)
    # Events reach a tenant's trigger only when they carry its tenant (as Gorax's own do).
    event = {
        "id": str(uuid.uuid4()),
        "occurred": "2026-01-01T00:00:00Z",
        "event": f"{name}.created",
        "resource": {"prefect.resource.id": "acme.order.42"},
        "payload": {"total": 42},
        "related": [tenant_related(run_tenant.id)],
    }
    other = {**event, "id": str(uuid.uuid4()), "resource": {"prefect.resource.id": "acme.invoice.1"}}
    small = {
        **event,
        "id": str(uuid.uuid4()),
        "resource": {"prefect.resource.id": "acme.order.43"},
        "payload": {"total": 5},
    }
    nobodys = {**event, "id": str(uuid.uuid4()), "related": []}
    async with get_client() as prefect:
        import datetime as _dt

        now = _dt.datetime.now(_dt.UTC).isoformat()
        response = await prefect.request(
            "POST",
            "/events",
            json=[
                {**other, "occurred": now},
                {**event, "occurred": now},
                {**small, "occurred": now},
                {**nobodys, "occurred": now},
            ],
        )
        assert response.status_code == 204

    async def finished() -> Any:
        runs = [r for r in await flow_runs(workflow_id) if r.state and r.state.is_final()]
        return runs if len(runs) >= 2 else None

    runs = await eventually(finished, timeout=120)
    assert len(runs) == 2 and all(r.state.is_completed() for r in runs), [r.state for r in runs]
    by_event = {r.parameters["trigger"]["id"]: r for r in runs}
    # The invoice event, and the order event of no tenant, started nothing.
    assert set(by_event) == {event["id"], small["id"]}
    ran, filtered = by_event[event["id"]], by_event[small["id"]]
    assert ran.parameters["trigger_node"] == "on_order" and ran.state.name == "Completed"
    assert ran.parameters["trigger"]["payload"] == {"total": 42}
    # The node's CEL filter turned the small order away: its run ended at once, named so.
    assert filtered.state.name == "Filtered" and "trigger.payload.total > 10" in filtered.state.message
