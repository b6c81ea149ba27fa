"""Workflows through the HTTP API on SQLite and PostgreSQL: CRUD, ETags, versions, isolation."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client

from api.auth.permissions import Role
from tests.api.conftest import TenantHandle
from tests.api.workflows.conftest import create, graph, publish, transform

API = "/api/v1"


async def test_create_read_update_with_etags(wf_tenant: TenantHandle) -> None:
    g = graph("orders", transform("shape", {"n": "{{ trigger.n }}"}))
    async with wf_tenant.client(Role.EDITOR) as client:
        created = await create(client, g, tags=["sales", "daily"], description="Shape orders")
        wid = created["id"]
        assert created["status"] == "draft" and created["version"] is None
        assert created["graph"]["nodes"][1]["config"] == {"value": {"n": "{{ trigger.n }}"}}
        read = await client.get(f"{API}/workflows/{wid}")
        assert read.status_code == 200
        etag = read.headers["ETag"]
        assert etag == read.json()["etag"] == created["etag"]

        changed = graph("orders", transform("shape", {"n": "{{ trigger.n + 1 }}"}))
        ok = await client.put(
            f"{API}/workflows/{wid}", json={"graph": changed, "name": "Orders"}, headers={"If-Match": etag}
        )
        assert ok.status_code == 200, ok.text
        assert ok.headers["ETag"] != etag and ok.json()["name"] == "Orders"
        assert ok.json()["graph"]["nodes"][1]["config"]["value"]["n"] == "{{ trigger.n + 1 }}"

        stale = await client.put(f"{API}/workflows/{wid}", json={"name": "Lost"}, headers={"If-Match": etag})
        assert stale.status_code == 412
        assert stale.json()["error"]["code"] == "PRECONDITION_FAILED"
        assert stale.json()["error"]["details"]["etag"] == ok.headers["ETag"]
        missing = await client.put(f"{API}/workflows/{wid}", json={"name": "Lost"})
        assert missing.status_code == 412
        assert (await client.get(f"{API}/workflows/{wid}")).json()["name"] == "Orders"


async def test_rest_draft_writes_through_to_the_collaboration_document(
    wf_tenant: TenantHandle, wf_servers: Any, database_url: str
) -> None:
    g = graph("collab", transform("a", 1))
    async with wf_tenant.client() as client:
        created = await create(client, g)
        g["nodes"][1]["config"]["value"] = 2
        response = await client.put(
            f"{API}/workflows/{created['id']}", json={"graph": g}, headers={"If-Match": created["etag"]}
        )
        assert response.status_code == 200
    # The live room of this API (on the server's own event loop) holds the change.
    collab = wf_servers(database_url).app.state.collab
    draft = await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(collab.read(created["id"], wf_tenant.id), collab.loop)
    )
    assert draft is not None and draft["nodes"][1]["config"] == {"value": 2}


async def test_list_search_filter_and_paginate(wf_tenant: TenantHandle) -> None:
    async with wf_tenant.client() as client:
        for i in range(5):
            await create(client, graph(f"report-{i}"), tags=["even" if i % 2 == 0 else "odd"])
        await create(client, graph("other thing"))
        seen: list[str] = []
        cursor = None
        while True:
            params = {"q": "report", "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(f"{API}/workflows", params=params)).json()
            assert page["total"] == 5 and len(page["items"]) <= 2
            seen += [w["name"] for w in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == [f"report-{i}" for i in range(5)]
        even = (await client.get(f"{API}/workflows", params={"tag": "even"})).json()
        assert sorted(w["name"] for w in even["items"]) == ["report-0", "report-2", "report-4"]
        bad = await client.get(f"{API}/workflows", params={"cursor": "%%%"})
        assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "cursor"


async def test_publish_invalid_graph_lists_node_ids(wf_tenant: TenantHandle) -> None:
    broken = graph(
        "broken",
        {"id": "fetch", "type": "http.request", "position": {"x": 0, "y": 0}, "config": {"method": "GET"}},
        {"id": "ghost", "type": "no.such.type", "position": {"x": 0, "y": 0}, "config": {}},
    )
    async with wf_tenant.client() as client:
        wid = (await create(client, broken))["id"]
        response = await client.post(f"{API}/workflows/{wid}/publish", json={})
        assert response.status_code == 422
        body = response.json()["error"]
        assert body["code"] == "VALIDATION_ERROR"
        nodes = {e["node_id"] for e in body["details"]["errors"]}
        assert {"fetch", "ghost"} <= nodes
        check = (await client.post(f"{API}/workflows/{wid}/validate", json={})).json()
        assert check["valid"] is False and {e["node_id"] for e in check["errors"]} >= {"fetch", "ghost"}
        assert (await client.get(f"{API}/workflows/{wid}/versions")).json()["items"] == []


async def test_versions_diff_and_rollback(wf_tenant: TenantHandle) -> None:
    v1 = graph("versions", transform("a", {"x": 1}), transform("b", "keep"))
    async with wf_tenant.client() as client:
        created = await create(client, v1)
        wid = created["id"]
        first = await publish(client, wid, "first")
        assert first["number"] == 1
        v2 = graph("versions", transform("a", {"x": 2}), transform("c", "new"))
        current = await client.get(f"{API}/workflows/{wid}")
        assert current.json()["status"] == "active" and current.json()["version"] == 1
        await client.put(f"{API}/workflows/{wid}", json={"graph": v2}, headers={"If-Match": current.headers["ETag"]})
        assert (await publish(client, wid, "second"))["number"] == 2

        diff = (await client.get(f"{API}/workflows/{wid}/versions/1/diff/2")).json()
        assert diff["nodes_added"] == ["c"] and diff["nodes_removed"] == ["b"]
        assert diff["nodes_changed"] == [{"id": "a", "changes": [{"path": "config.value.x", "before": 1, "after": 2}]}]
        assert diff["edges_changed"] == [{"id": "e1", "changes": [{"path": "target", "before": "b", "after": "c"}]}]

        rolled = await client.post(f"{API}/workflows/{wid}/versions/1/rollback")
        assert rolled.status_code == 201 and rolled.json()["number"] == 3
        assert rolled.json()["graph"] == (await client.get(f"{API}/workflows/{wid}/versions/1")).json()["graph"]
        versions = (await client.get(f"{API}/workflows/{wid}/versions")).json()["items"]
        assert [v["number"] for v in versions] == [3, 2, 1]
        assert versions[0]["message"] == "Rollback to version 1"
        same = (await client.get(f"{API}/workflows/{wid}/versions/1/diff/3")).json()
        assert not same["nodes_added"] and not same["nodes_changed"] and not same["nodes_removed"]
        assert (await client.get(f"{API}/workflows/{wid}/versions/9")).status_code == 404


async def test_clone_export_import_and_archive(wf_tenant: TenantHandle) -> None:
    g = graph("exported", transform("a", 1))
    async with wf_tenant.client() as client:
        wid = (await create(client, g))["id"]
        clone = await client.post(f"{API}/workflows/{wid}/clone", json={"name": "copy"})
        assert clone.status_code == 201 and clone.json()["graph"]["nodes"] == g["nodes"]
        exported = (await client.get(f"{API}/workflows/{wid}/export")).json()
        assert exported["format"] == "gorax/graph@1" and exported["nodes"] == g["nodes"]
        imported = await client.post(f"{API}/workflows/import", json=exported)
        assert imported.status_code == 201 and imported.json()["name"] == "exported"
        bad = await client.post(f"{API}/workflows/import", json={"format": "other"})
        assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "format"

        await publish(client, wid)
        assert (await client.delete(f"{API}/workflows/{wid}")).status_code == 204
        archived = (await client.get(f"{API}/workflows/{wid}")).json()
        assert archived["status"] == "archived" and archived["version"] == 1
        listed = (await client.get(f"{API}/workflows")).json()["items"]
        assert wid not in {w["id"] for w in listed}
        assert (await client.get(f"{API}/workflows/{wid}/versions")).json()["total"] == 1
        run = await client.post(f"{API}/workflows/{wid}/execute", json={})
        assert run.status_code == 409


async def test_roles_viewer_reads_editor_writes(wf_tenant: TenantHandle) -> None:
    async with wf_tenant.client(Role.EDITOR) as editor, wf_tenant.client(Role.VIEWER) as viewer:
        wid = (await create(editor, graph("roles")))["id"]
        assert (await viewer.get(f"{API}/workflows/{wid}")).status_code == 200
        denied = await viewer.post(f"{API}/workflows/{wid}/publish", json={})
        assert denied.status_code == 403
        assert denied.json()["error"]["details"]["permission"] == "workflow:publish"


async def test_other_tenants_workflows_are_404_everywhere(wf_tenant: TenantHandle, wf_other: TenantHandle) -> None:
    async with wf_tenant.client() as owner:
        created = await create(owner, graph("private", transform("a", 1)))
        await publish(owner, created["id"])
    wid = created["id"]
    calls = [
        ("GET", f"/workflows/{wid}", None),
        ("PUT", f"/workflows/{wid}", {"name": "x"}),
        ("DELETE", f"/workflows/{wid}", None),
        ("POST", f"/workflows/{wid}/clone", {}),
        ("GET", f"/workflows/{wid}/export", None),
        ("POST", f"/workflows/{wid}/validate", {}),
        ("POST", f"/workflows/{wid}/publish", {}),
        ("POST", f"/workflows/{wid}/pause", None),
        ("POST", f"/workflows/{wid}/resume", None),
        ("GET", f"/workflows/{wid}/versions", None),
        ("GET", f"/workflows/{wid}/versions/1", None),
        ("GET", f"/workflows/{wid}/versions/1/diff/1", None),
        ("POST", f"/workflows/{wid}/versions/1/rollback", None),
        ("POST", f"/workflows/{wid}/execute", {"input": {}}),
    ]
    async with wf_other.client() as intruder:
        for method, path, body in calls:
            response = await intruder.request(method, API + path, json=body, headers={"If-Match": created["etag"]})
            assert response.status_code == 404, f"{method} {path}: {response.status_code}"
        assert wid not in {w["id"] for w in (await intruder.get(f"{API}/workflows")).json()["items"]}
    async with wf_tenant.client() as owner:
        assert (await owner.get(f"{API}/workflows/{wid}")).json()["name"] == "private"


async def test_pause_and_resume_the_deployment(sq_tenant: TenantHandle) -> None:
    scheduled = graph("cron", transform("a", 1))
    scheduled["nodes"][0] = {
        "id": "start",
        "type": "trigger.schedule",
        "position": {"x": 0, "y": 0},
        "config": {"cron": "0 3 * * *", "timezone": "UTC"},
    }
    async with sq_tenant.client() as client:
        wid = (await create(client, scheduled))["id"]
        await publish(client, wid)
        paused = await client.post(f"{API}/workflows/{wid}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        async with get_client() as prefect:
            deployments = await prefect.read_deployments()
            mine = [d for d in deployments if f"workflow:{wid}" in d.tags]
            assert len(mine) == 1 and mine[0].paused
            assert f"tenant:{sq_tenant.id}" in mine[0].tags
            assert len(await prefect.read_deployment_schedules(mine[0].id)) == 1
            resumed = await client.post(f"{API}/workflows/{wid}/resume")
            assert resumed.json()["status"] == "active"
            assert not (await prefect.read_deployment(UUID(str(mine[0].id)))).paused


async def test_catalogue_and_graph_schema(sq_tenant: TenantHandle) -> None:
    async with sq_tenant.client(Role.VIEWER) as viewer:
        types = (await viewer.get(f"{API}/node-types")).json()
        by_type = {t["type"]: t for t in types}
        assert {"trigger.manual", "data.transform", "http.request"} <= set(by_type)
        assert "properties" in by_type["http.request"]["config_schema"]
        schema = (await viewer.get(f"{API}/schema/graph")).json()
        assert schema["title"].startswith("Gorax workflow graph") and "nodes" in schema["properties"]


async def test_anonymous_is_401(sq_tenant: TenantHandle) -> None:
    async with httpx.AsyncClient(base_url=sq_tenant.base_url) as anon:
        assert (await anon.get(f"{API}/workflows")).status_code == 401


def _evented(name: str) -> dict[str, Any]:
    """A workflow started by the event ``acme.order.created`` (an automation of its own)."""
    evented = graph(name, transform("a", "{{ trigger }}"))
    evented["nodes"][0] = {
        "id": "start",
        "type": "trigger.event",
        "position": {"x": 0, "y": 0},
        "config": {"event": "acme.order.created"},
    }
    return evented


async def test_triggers_follow_publish_pause_resume_and_archive(sq_tenant: TenantHandle) -> None:
    evented = _evented("on-event")
    async with sq_tenant.client() as client, get_client() as prefect:
        wid = (await create(client, evented))["id"]
        await publish(client, wid)

        async def automations() -> list[object]:
            return [a for a in await prefect.read_automations() if wid in a.description]

        assert [a.enabled for a in await automations()] == [True]
        await client.post(f"{API}/workflows/{wid}/pause")
        assert [a.enabled for a in await automations()] == [False]
        await client.post(f"{API}/workflows/{wid}/resume")
        assert [a.enabled for a in await automations()] == [True]
        assert (await client.delete(f"{API}/workflows/{wid}")).status_code == 204
        assert await automations() == []


async def test_pausing_keeps_a_webhooks_automation_enabled(sq_tenant: TenantHandle) -> None:
    # Its deliveries are refused (409) or held by the dispatcher while paused; an automation that
    # never paused has no moment after resume in which Prefect has not taken it up again.
    evented = _evented("on-event-and-hook")
    evented["nodes"].append({"id": "hook", "type": "trigger.webhook", "position": {"x": 0, "y": 200}, "config": {}})
    evented["edges"].append({"id": "e-hook", "source": "hook", "target": "a"})
    async with sq_tenant.client() as client, get_client() as prefect:
        wid = (await create(client, evented))["id"]
        await publish(client, wid)

        async def enabled() -> dict[str, bool]:
            return {
                a.actions[0].parameters["trigger_node"]: a.enabled
                for a in await prefect.read_automations()
                if wid in a.description
            }

        assert await enabled() == {"start": True, "hook": True}
        assert (await client.post(f"{API}/workflows/{wid}/pause")).status_code == 200
        assert await enabled() == {"start": False, "hook": True}
        await publish(client, wid)  # republishing a paused workflow keeps it so
        assert await enabled() == {"start": False, "hook": True}
        assert (await client.post(f"{API}/workflows/{wid}/resume")).status_code == 200
        assert await enabled() == {"start": True, "hook": True}


async def test_a_number_no_store_keeps_exactly_is_refused_with_its_place(wf_tenant: TenantHandle) -> None:
    g = graph("big-number", transform("a", {"id": 10**20}))
    async with wf_tenant.client() as client:
        response = await client.post(f"{API}/workflows", json={"name": "big", "graph": g})
    assert response.status_code == 400, response.text
    assert "graph.nodes[1].config.value.id" in response.json()["error"]["message"]


async def test_the_deployment_is_named_and_described_for_people_and_keeps_its_name(sq_tenant: TenantHandle) -> None:
    evented = graph("Invoice run", transform("a", "{{ trigger }}"))
    evented["nodes"][0] = {
        "id": "start",
        "type": "trigger.event",
        "position": {"x": 0, "y": 0},
        "config": {"event": "acme.invoice.created"},
    }
    async with sq_tenant.client() as client, get_client() as prefect:
        slug = (await client.get(f"{API}/auth/me")).json()["tenant"]["slug"]
        created = await create(client, evented, description="Sends the invoices.")
        wid = created["id"]
        await publish(client, wid)

        async def mine() -> tuple[list[Any], list[Any]]:
            deployments = [d for d in await prefect.read_deployments() if f"workflow:{wid}" in d.tags]
            automations = [a for a in await prefect.read_automations() if wid in a.description]
            return deployments, automations

        [deployment], [automation] = await mine()
        assert deployment.name == f"{slug}--invoice-run-{wid[:8]}"
        assert deployment.description == "Sends the invoices."
        assert {f"tenant:{sq_tenant.id}", f"workflow:{wid}"} <= set(deployment.tags)
        assert automation.name == f"{deployment.name}--trigger-start"

        etag = (await client.get(f"{API}/workflows/{wid}")).headers["ETag"]
        renamed = await client.put(
            f"{API}/workflows/{wid}", headers={"If-Match": etag}, json={"name": "Billing", "description": "Bills."}
        )
        assert renamed.status_code == 200, renamed.text
        await publish(client, wid)
        [again], [automation_again] = await mine()
        assert (again.id, again.name) == (deployment.id, deployment.name)  # neither orphaned nor doubled
        assert again.description == "Bills."
        assert automation_again.id == automation.id

        plain = await create(client, graph("plain", transform("a", 1)))
        await publish(client, plain["id"])
        [undescribed] = [d for d in await prefect.read_deployments() if f"workflow:{plain['id']}" in d.tags]
        assert not undescribed.description  # none, not the text "None"
