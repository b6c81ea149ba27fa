"""``webhook_failures`` alert rules: N failed webhook deliveries in M minutes, on Prefect.

Deliveries are really sent to the API's receiver with a wrong signature; the receiver emits one
``gorax.webhook.delivery.failed`` event per rejected delivery to the real Prefect server, whose
automation (threshold N within M minutes) posts back to the API, which sends one grouped alert
to an HTTP peer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.db.base import utcnow
from api.webhooks import failures
from tests.api.alerts.conftest import client_of
from tests.api.alerts.test_alerts import _automations, _eventually
from tests.api.conftest import TenantHandle, new_tenant
from tests.api.triggers.conftest import add_secret, graph, hook, publish_new, signed, webhook_urls
from tests.peers import HttpPeer

pytestmark = pytest.mark.timeout(600)

SIGNATURE = {"scheme": "hmac-sha256", "header": "X-Hub-Signature-256", "prefix": "sha256=", "secret": "hook_secret"}
SECRET = "the-right-shared-secret"


async def _signed_workflow(client: httpx.AsyncClient) -> tuple[str, str]:
    """A published workflow with one signed webhook; returns (workflow id, webhook URL)."""
    await add_secret(client, "hook_secret", SECRET)
    workflow_id = await publish_new(client, graph(f"hooked-{uuid.uuid4().hex[:6]}", [hook("in", SIGNATURE)]))
    return workflow_id, (await webhook_urls(client, workflow_id))["in"]["url"]


async def _bad_delivery(client: httpx.AsyncClient, url: str, n: int) -> str:
    body = json.dumps({"n": n}).encode()
    response = await client.post(url, content=body, headers=signed(SIGNATURE, body, "not-the-secret"))
    assert response.status_code == 401, response.text
    return str(n)


async def _failed_events(tenant_id: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

    async with get_client() as client:
        page = await client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=[failures.EVENT_NAME]),
                occurred=EventOccurredFilter(since=utcnow() - timedelta(minutes=30)),
                resource=EventResourceFilter(labels={"gorax.tenant": [tenant_id]}),
            ),
            limit=50,
        )
    return list(page.events)


async def test_n_bad_signatures_in_the_window_send_one_grouped_alert_and_n_minus_one_none(
    alerts_tenant: TenantHandle, alerts_db: Any, alerts_api: Any, hook_peer: HttpPeer
) -> None:
    other = await new_tenant(alerts_db, alerts_api.url)
    a_path, b_path = (f"/{p}-{uuid.uuid4().hex[:6]}" for p in "ab")
    async with client_of(alerts_tenant) as a, client_of(other) as b:
        workflow_id, url = await _signed_workflow(a)
        _, b_url = await _signed_workflow(b)
        response = await a.post(
            "/api/v1/alert-rules",
            json={
                "name": "hook failures",
                "kind": "webhook_failures",
                "threshold": 3,
                "window_minutes": 10,
                "workflow_id": workflow_id,
                "channel": {"type": "webhook", "url": hook_peer.url + a_path},
                "cooldown_minutes": 60,
            },
        )
        assert response.status_code == 201, response.text
        rule = response.json()
        [automation] = await _automations(f"gorax-alert-{rule['id']}")
        assert automation.trigger.expect == {failures.EVENT_NAME}
        assert automation.trigger.threshold == 3 and automation.trigger.within == timedelta(minutes=10)
        # Tenant B alerts on its first failed delivery: A's failures must never reach it.
        response = await b.post(
            "/api/v1/alert-rules",
            json={
                "name": "b hooks",
                "kind": "webhook_failures",
                "threshold": 1,
                "window_minutes": 10,
                "channel": {"type": "webhook", "url": hook_peer.url + b_path},
            },
        )
        assert response.status_code == 201, response.text
        await asyncio.sleep(2)  # Prefect's triggers service takes up new automations a moment later

        # An accepted delivery is no failure: it emits no failure event.
        body = b'{"ok": true}'
        accepted = await a.post(url, content=body, headers=signed(SIGNATURE, body, SECRET))
        assert accepted.status_code == 202, accepted.text

        # N-1 rejected deliveries: Prefect has both events, the rule stays quiet.
        for n in range(2):
            await _bad_delivery(a, url, n)
        events = await _eventually(lambda: _two_or_more(alerts_tenant.id))
        event = events[0]
        assert event.resource["gorax.workflow"] == workflow_id
        assert event.payload["failure"] == "bad_signature" and "does not match" in event.payload["reason"]
        assert SECRET not in json.dumps(event.model_dump(mode="json")) and '"n"' not in json.dumps(event.payload)
        await asyncio.sleep(3)
        assert hook_peer.received("POST", a_path) == []

        # The N-th: exactly one grouped alert listing the three failed deliveries.
        await _bad_delivery(a, url, 2)
        [sent] = await _eventually(lambda: asyncio.sleep(0, hook_peer.received("POST", a_path)))
        alert = sent.json()
        assert alert["rule"] == {"id": rule["id"], "name": "hook failures", "kind": "webhook_failures"}
        listed = alert["deliveries"]
        assert len(listed) == 3, listed
        assert {d["failure"] for d in listed} == {"bad_signature"}
        assert all(d["workflow_id"] == workflow_id and "does not match" in d["reason"] and d["at"] for d in listed)
        assert "3 failed webhook deliveries (3 within 10 min)" in alert["subject"]
        history = (await a.get("/api/v1/alerts", params={"rule_id": rule["id"]})).json()["items"]
        assert [h["status"] for h in history] == ["sent"] and len(history[0]["runs"]) == 3

        await asyncio.sleep(3)
        assert len(hook_peer.received("POST", a_path)) == 1
        assert hook_peer.received("POST", b_path) == []  # tenant isolation
        assert len(await _failed_events(alerts_tenant.id)) == 3

        # Tenant B's own rejected delivery fires B's rule, listing only B's delivery.
        await _bad_delivery(b, b_url, 9)
        [b_sent] = await _eventually(lambda: asyncio.sleep(0, hook_peer.received("POST", b_path)))
        assert len(b_sent.json()["deliveries"]) == 1
        assert b_sent.json()["deliveries"][0]["workflow_id"] != workflow_id


async def _two_or_more(tenant_id: str) -> list[Any]:
    events = await _failed_events(tenant_id)
    return events if len(events) >= 2 else []


async def test_a_webhook_failures_rule_needs_its_numbers_and_editing_it_replaces_the_automation(
    alerts_tenant: TenantHandle, hook_peer: HttpPeer
) -> None:
    async with client_of(alerts_tenant) as a:
        path = f"/t-{uuid.uuid4().hex[:6]}"
        base = {
            "name": "hooks",
            "kind": "webhook_failures",
            "channel": {"type": "webhook", "url": hook_peer.url + path},
        }
        response = await a.post("/api/v1/alert-rules", json=base)
        assert response.status_code == 422, response.text
        paths = {e["path"] for e in response.json()["error"]["details"]["errors"]}
        assert paths == {"threshold", "window_minutes"}
        response = await a.post("/api/v1/alert-rules", json={**base, "threshold": 5, "window_minutes": 5})
        assert response.status_code == 201, response.text
        rule = response.json()
        [before] = await _automations(f"gorax-alert-{rule['id']}")
        assert before.trigger.threshold == 5

        response = await a.put(
            f"/api/v1/alert-rules/{rule['id']}",
            json={**base, "threshold": 2, "window_minutes": 30, "enabled": False},
        )
        assert response.status_code == 200, response.text
        [after] = await _automations(f"gorax-alert-{rule['id']}")
        assert after.id == before.id
        assert after.trigger.threshold == 2 and after.trigger.within == timedelta(minutes=30)
        assert after.enabled is False

        # A test alert of the kind shows what a delivery failure alert looks like.
        response = await a.post(f"/api/v1/alert-rules/{rule['id']}/test")
        assert response.status_code in (200, 201), response.text
        [test_alert] = hook_peer.received("POST", path)
        assert test_alert.json()["deliveries"][0]["failure"] == "bad_signature"
