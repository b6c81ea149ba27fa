"""``POST /api/v1/imports/n8n`` on SQLite and PostgreSQL: a draft in the caller's tenant, the
report, 422 naming the JSON path, tenant isolation, and publishing refused while placeholders remain."""

from __future__ import annotations

from api.auth.permissions import Role
from tests.api.conftest import TenantHandle
from tests.flows.importers.conftest import n8n_file

API = "/api/v1"


async def test_import_creates_a_draft_with_the_report(wf_tenant: TenantHandle, wf_other: TenantHandle) -> None:
    async with wf_tenant.client(Role.EDITOR) as client:
        response = await client.post(f"{API}/imports/n8n", json=n8n_file("slack_message_post.workflow.json"))
        assert response.status_code == 201, response.text
        body = response.json()
        wid = body["workflow_id"]
        assert response.headers["location"] == f"{API}/workflows/{wid}"
        assert body["name"] == "slack tests"
        assert body["report"]["summary"]["mapped"] == 3
        assert body["report"]["credentials"][0]["name"] == "slack_account_2"
        workflow = (await client.get(f"{API}/workflows/{wid}")).json()
        assert workflow["status"] == "draft" and "imported-n8n" in workflow["tags"]
        assert {n["type"] for n in workflow["graph"]["nodes"]} == {
            "trigger.manual",
            "slack.send_message",
            "data.transform",
        }
        check = (await client.post(f"{API}/workflows/{wid}/validate", json={})).json()
        assert check["valid"] is True, check
    # the other tenant sees nothing of it
    async with wf_other.client() as other:
        assert (await other.get(f"{API}/workflows/{wid}")).status_code == 404
        listed = (await other.get(f"{API}/workflows")).json()["items"]
        assert wid not in {w["id"] for w in listed}


async def test_import_is_audited(wf_tenant: TenantHandle) -> None:
    async with wf_tenant.client() as client:
        response = await client.post(
            f"{API}/imports/n8n", params={"name": "Looping"}, json=n8n_file("Workflow_loop.json")
        )
        assert response.status_code == 201, response.text
        wid = response.json()["workflow_id"]
        assert response.json()["name"] == "Looping"
        events = (await client.get(f"{API}/audit", params={"action": "workflow.import", "limit": 500})).json()["items"]
        imported = [e for e in events if e["action"] == "workflow.import" and e["resource_id"] == wid]
        assert imported and imported[0]["details"]["source"] == "n8n"
        assert imported[0]["details"]["mapped"] == 5


async def test_viewer_cannot_import(wf_tenant: TenantHandle) -> None:
    async with wf_tenant.client(Role.VIEWER) as client:
        response = await client.post(f"{API}/imports/n8n", json=n8n_file("Workflow_loop.json"))
        assert response.status_code == 403


async def test_malformed_n8n_json_is_422_naming_the_path(wf_tenant: TenantHandle) -> None:
    document = n8n_file("Workflow_loop.json")
    document["nodes"][2]["position"] = "left"
    async with wf_tenant.client() as client:
        response = await client.post(f"{API}/imports/n8n", json=document)
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["details"]["path"] == "nodes[2].position"
        assert "position" in error["message"]
        not_json = await client.post(
            f"{API}/imports/n8n", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert not_json.status_code == 422
        before = (await client.get(f"{API}/workflows")).json()["total"]
        assert (await client.post(f"{API}/imports/n8n", json={"nodes": "x"})).status_code == 422
        assert (await client.get(f"{API}/workflows")).json()["total"] == before


async def test_publishing_a_draft_with_placeholders_is_refused(wf_tenant: TenantHandle) -> None:
    async with wf_tenant.client() as client:
        response = await client.post(f"{API}/imports/n8n", json=n8n_file("AwsS3.file.upload.V2.workflow.json"))
        assert response.status_code == 201, response.text
        wid = response.json()["workflow_id"]
        assert {p["node_id"] for p in response.json()["report"]["placeholders"]} == {"move_binary_data", "code"}
        assert (await client.post(f"{API}/workflows/{wid}/validate", json={})).json()["valid"] is True
        published = await client.post(f"{API}/workflows/{wid}/publish", json={"message": "try"})
        assert published.status_code == 422
        errors = published.json()["error"]["details"]["errors"]
        assert {e["node_id"] for e in errors} == {"move_binary_data", "code"}
        assert {e["code"] for e in errors} == {"not_publishable"}
        assert any("n8n-nodes-base.moveBinaryData" in e["message"] for e in errors)
        assert (await client.get(f"{API}/workflows/{wid}/versions")).json()["items"] == []
