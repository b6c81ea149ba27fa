"""Event triggers only ever see their own tenant's events, whatever their own filter says.

Two tenants on one API, real Prefect automations and a worker. Tenant B's catch-all triggers
(``gorax.webhook.received`` and ``prefect.flow-run.Failed``, no resource filter) must never run
for tenant A's webhook delivery or A's failed run, while tenant A's identical triggers do; an
event that carries no tenant starts nothing, not even the webhook's own automation.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from typing import Any

import pytest

from api.webhooks.dispatcher import EVENT_NAME, workflow_resource
from tests.api.conftest import TenantHandle
from tests.api.triggers.conftest import (
    _tenant,
    api_client,
    eventually,
    flow_runs,
    hook,
    publish_new,
    webhook_urls,
)


def _catch_all(name: str, event: str) -> dict[str, Any]:
    """A workflow run by every ``event`` it can see (no resource filter)."""
    return {
        "format": "gorax/graph@1",
        "name": f"{name}-{uuid.uuid4().hex[:6]}",
        "nodes": [
            {"id": "seen", "type": "trigger.event", "position": {"x": 0, "y": 0}, "config": {"event": event}},
            {
                "id": "out",
                "type": "control.output",
                "position": {"x": 0, "y": 100},
                "config": {"value": "{{ trigger.event }}"},
            },
        ],
        "edges": [{"id": "e1", "source": "seen", "target": "out"}],
    }


def _failing_hook() -> dict[str, Any]:
    """A webhook workflow whose run fails (its call goes to a port nobody listens on)."""
    return {
        "format": "gorax/graph@1",
        "name": f"source-{uuid.uuid4().hex[:6]}",
        "nodes": [
            hook("hook", {"scheme": "none"}),
            {
                "id": "call",
                "type": "http.request",
                "position": {"x": 0, "y": 100},
                "config": {"method": "GET", "url": "http://127.0.0.1:9/nothing", "timeout_seconds": 5},
            },
        ],
        "edges": [{"id": "e1", "source": "hook", "target": "call"}],
    }


async def _final_runs(workflow_id: str) -> list[Any]:
    return [r for r in await flow_runs(workflow_id) if r.state and r.state.is_final()]


@pytest.mark.timeout(900)  # deploys and a worker on a loaded machine
async def test_a_tenants_event_triggers_never_see_another_tenants_events(
    run_tenant: TenantHandle, tr_servers: Any, tr_databases: Any, sqlite_url: str
) -> None:
    from prefect.client.orchestration import get_client

    tenant_b = await _tenant(tr_servers, tr_databases, sqlite_url)
    async with api_client(run_tenant) as a, api_client(tenant_b) as b:
        source = await publish_new(a, _failing_hook())
        a_hooks = await publish_new(a, _catch_all("a-hooks", EVENT_NAME))
        a_failures = await publish_new(a, _catch_all("a-failures", "prefect.flow-run.Failed"))
        b_hooks = await publish_new(b, _catch_all("b-hooks", EVENT_NAME))
        b_failures = await publish_new(b, _catch_all("b-failures", "prefect.flow-run.Failed"))
        url = (await webhook_urls(a, source))["hook"]["url"]
        await asyncio.sleep(3)  # Prefect's triggers service takes up new automations a moment later

        # An event naming A's workflow but carrying no tenant: nobody's, so it runs nothing.
        async with get_client() as prefect:
            forged = {
                "id": str(uuid.uuid4()),
                "occurred": datetime.datetime.now(datetime.UTC).isoformat(),
                "event": EVENT_NAME,
                "resource": {"prefect.resource.id": workflow_resource(source), "gorax.trigger-node": "hook"},
                "payload": {"body": {"forged": True}},
            }
            response = await prefect.request("POST", "/events", json=[forged])
            assert response.status_code == 204, response.text
        response = await a.post(url, json={"order": 42})
        assert response.status_code == 202, response.text

        # A's own catch-all triggers run: for its delivery and for its failed run.
        [failed] = await eventually(lambda: _final_runs(source), timeout=180)
        assert failed.state.is_failed() and failed.parameters["trigger"]["body"] == {"order": 42}
        seen_hook = await eventually(lambda: _final_runs(a_hooks), timeout=180)
        assert [r.parameters["trigger"]["id"] for r in seen_hook] == [response.json()["delivery_id"]]
        seen_failure = await eventually(lambda: _final_runs(a_failures), timeout=180)
        assert (
            seen_failure[0].parameters["trigger"]["resource"]["prefect.resource.id"] == f"prefect.flow-run.{failed.id}"
        )

        # Prefect evaluated B's triggers on the same events; give them as long again to be sure.
        await asyncio.sleep(10)
        assert await flow_runs(b_hooks) == [] and await flow_runs(b_failures) == []
        assert len(await flow_runs(source)) == 1  # the forged event started nothing
        assert len(await flow_runs(a_hooks)) == 1 and len(await flow_runs(a_failures)) == 1


async def test_a_trigger_that_would_start_itself_from_its_own_runs_is_refused(
    tr_servers: Any, tr_databases: Any, sqlite_url: str
) -> None:
    """Prefect refuses such an automation by itself; with the tenant filter its check cannot see
    it, so publishing does, before anything is deployed."""
    tenant = await _tenant(tr_servers, tr_databases, sqlite_url)
    g = _catch_all("loop", "prefect.flow-run.Running")
    async with api_client(tenant) as client:
        response = await client.post("/api/v1/workflows", json={"name": g["name"], "graph": g})
        assert response.status_code == 201, response.text
        workflow_id = response.json()["id"]
        response = await client.post(f"/api/v1/workflows/{workflow_id}/publish", json={})
        assert response.status_code == 422, response.text
        [error] = response.json()["error"]["details"]["errors"]
        assert error["node_id"] == "seen" and error["path"] == "config.resource"
        workflow = (await client.get(f"/api/v1/workflows/{workflow_id}")).json()
        assert workflow["status"] == "draft" and workflow["version"] is None
        # Narrowed to other runs, it publishes.
        g["nodes"][0]["config"]["resource"] = {"prefect.resource.name": "nightly-*"}
        current = await client.get(f"/api/v1/workflows/{workflow_id}")
        await client.put(
            f"/api/v1/workflows/{workflow_id}", json={"graph": g}, headers={"If-Match": current.headers["ETag"]}
        )
        response = await client.post(f"/api/v1/workflows/{workflow_id}/publish", json={})
        assert response.status_code == 201, response.text


async def test_automations_built_before_the_tenant_filter_get_it(
    tr_servers: Any, tr_databases: Any, sqlite_url: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    from api.webhooks.automations import require_tenants

    tenant = await _tenant(tr_servers, tr_databases, sqlite_url)
    g = _catch_all("old", EVENT_NAME)
    g["nodes"].append(hook("hook", {"scheme": "none"}))
    g["edges"].append({"id": "e2", "source": "hook", "target": "out"})
    async with api_client(tenant) as client:
        workflow_id = await publish_new(client, g)
        assert (await client.post(f"/api/v1/workflows/{workflow_id}/pause")).status_code == 200

    def requires_tenant(automation: Any) -> bool:
        related = automation.trigger.match_related
        return any(
            spec.root.get("prefect.resource.id") == f"prefect.tag.tenant:{tenant.id}"
            for spec in (related if isinstance(related, list) else [related])
        )

    async with get_client() as prefect:

        def enabled(automations: list[Any]) -> dict[str, bool]:
            return {a.actions[0].parameters["trigger_node"]: a.enabled for a in automations}

        mine = [a for a in await prefect.read_automations() if workflow_id in a.description]
        # Paused: the event trigger's automation is off; the webhook's stays on (its deliveries
        # are refused or held while the workflow is paused).
        assert len(mine) == 2 and all(requires_tenant(a) for a in mine)
        assert enabled(mine) == {"seen": False, "hook": True}
        for automation in mine:  # as they were built before
            old = automation.model_dump(include=set(AutomationCore.model_fields) - {"owner_resource"})
            old["trigger"]["match_related"] = {}
            await prefect.update_automation(automation.id, AutomationCore.model_validate(old))
        assert not any(requires_tenant(a) for a in await prefect.read_automations() if workflow_id in a.description)

        assert await require_tenants(tr_databases[sqlite_url], prefect) >= 2
        rebuilt = [a for a in await prefect.read_automations() if workflow_id in a.description]
        assert len(rebuilt) == 2 and all(requires_tenant(a) for a in rebuilt)
        assert enabled(rebuilt) == {"seen": False, "hook": True}  # each as it was
        assert {a.id for a in rebuilt} == {a.id for a in mine}
