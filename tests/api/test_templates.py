"""The template gallery through the HTTP API: search, categories, one template, "use this
template" (a draft workflow, credentials and variables present or missing), roles, isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.auth.permissions import Role
from api.services.templates import CATEGORIES, all_templates
from tests.api.conftest import TenantHandle

API = "/api/v1"


@pytest.fixture(autouse=True)
def _prefect(prefect_server: Any) -> Any:
    """Credentials and variables live in the session's Prefect server."""
    return prefect_server


async def test_search_and_category_counts(tenant: TenantHandle) -> None:
    async with tenant.client(Role.VIEWER) as client:
        everything = (await client.get(f"{API}/templates")).json()
        assert everything["total"] == len(all_templates()) >= 20
        counts = {c["id"]: c["count"] for c in everything["categories"]}
        assert list(counts) == list(CATEGORIES) and sum(counts.values()) == everything["total"]
        assert all(count > 0 for count in counts.values())

        found = (await client.get(f"{API}/templates", params={"q": "PagerDuty incident"})).json()
        ids = {t["id"] for t in found["items"]}
        assert "incident-page-and-announce" in ids and "weekly-sales-report" not in ids
        assert all("pagerduty" in (t["description"] + " ".join(t["tags"])).lower() for t in found["items"])
        assert sum(c["count"] for c in found["categories"]) == found["total"]

        approvals = (await client.get(f"{API}/templates", params={"category": "approvals"})).json()
        assert approvals["total"] == counts["approvals"]
        assert {t["category"] for t in approvals["items"]} == {"approvals"}
        card = next(t for t in approvals["items"] if t["id"] == "access-request-approval")
        assert card["trigger_type"] == "trigger.manual" and "human.approval" in card["node_types"]
        assert card["node_count"] == 6 and card["credentials"] == ["slack"]

        both = (await client.get(f"{API}/templates", params={"q": "github", "category": "approvals"})).json()
        assert [t["id"] for t in both["items"]] == ["deploy-approval-gate"]
        none = (await client.get(f"{API}/templates", params={"q": "no-such-word-anywhere"})).json()
        assert none["items"] == [] and all(c["count"] == 0 for c in none["categories"])

        bad = await client.get(f"{API}/templates", params={"category": "nope"})
        assert bad.status_code == 400 and bad.json()["error"]["details"] == {"field": "category"}
        assert "'nope'" in bad.json()["error"]["message"]


async def test_one_template_for_the_preview(tenant: TenantHandle) -> None:
    async with tenant.client(Role.VIEWER) as client:
        response = await client.get(f"{API}/templates/github-deploy-notifier")
    assert response.status_code == 200
    detail = response.json()
    assert detail["graph"]["format"] == "gorax/graph@1" and len(detail["graph"]["nodes"]) == detail["node_count"]
    assert detail["trigger_node"] == "deployment"
    assert detail["sample_trigger"]["body"]["deployment_status"]["state"] == "failure"
    needs = {c["name"]: c for c in detail["credentials_needed"]}
    assert needs["github_webhook"] == {"name": "github_webhook", "types": ["webhook-secret"], "nodes": ["deployment"]}
    assert needs["slack"]["types"] == ["oauth2-connection", "slack-credentials"] and needs["slack"]["nodes"] == [
        "alert",
        "announce",
    ]
    assert needs["github"]["types"] == ["github-token", "oauth2-connection"]
    assert detail["author"] and detail["license"] == "Apache-2.0"


async def test_unknown_template_is_404_naming_it(tenant: TenantHandle) -> None:
    async with tenant.client() as client:
        read = await client.get(f"{API}/templates/no-such-template")
        used = await client.post(f"{API}/templates/no-such-template/use", json={})
    for response in (read, used):
        assert response.status_code == 404
        error = response.json()["error"]
        assert "'no-such-template'" in error["message"] and error["details"] == {"template_id": "no-such-template"}


async def test_use_creates_a_draft_and_lists_what_is_missing(tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    async with tenant.client(Role.EDITOR) as client:
        made = await client.post(
            f"{API}/credentials", json={"name": "slack", "type": "slack-credentials", "values": {"token": "xoxb-1"}}
        )
        assert made.status_code == 201, made.text
        # A credential of the right name but a type the nodes cannot use is not "present".
        wrong = await client.post(
            f"{API}/credentials",
            json={"name": "pagerduty", "type": "http-auth", "values": {"scheme": "bearer", "token": "t"}},
        )
        assert wrong.status_code == 201, wrong.text
        used = await client.post(f"{API}/templates/uptime-monitor/use")
        assert used.status_code == 201, used.text
        body = used.json()
        assert body["name"] == "Check a service's health and page when it is down"
        assert body["template_id"] == "uptime-monitor"
        status = {c["name"]: (c["present"], c["found_type"]) for c in body["credentials"]}
        assert status == {"slack": (True, "slack-credentials"), "pagerduty": (False, "http-auth")}
        assert body["variables"] == [{"name": "SERVICE_URL", "present": False}]

        workflow = (await client.get(f"{API}/workflows/{body['workflow_id']}")).json()
        assert workflow["status"] == "draft" and workflow["name"] == body["name"]
        assert workflow["tags"] == ["http", "pagerduty", "slack", "schedule", "monitoring"]
        template = (await client.get(f"{API}/templates/uptime-monitor")).json()
        assert [n["id"] for n in workflow["graph"]["nodes"]] == [n["id"] for n in template["graph"]["nodes"]]
        assert workflow["graph"]["name"] == body["name"]

        # Using it again derives a free name; a given name is used as given.
        again = (await client.post(f"{API}/templates/uptime-monitor/use", json={})).json()
        assert again["name"] == f"{body['name']} (2)" and again["workflow_id"] != body["workflow_id"]
        named = (await client.post(f"{API}/templates/uptime-monitor/use", json={"name": "Ping prod"})).json()
        assert named["name"] == "Ping prod"
        ok = await client.post(f"{API}/variables", json={"name": "SERVICE_URL", "value": "https://status.example"})
        assert ok.status_code == 201, ok.text
        third = (await client.post(f"{API}/templates/uptime-monitor/use", json={"name": "Ping staging"})).json()
        assert third["variables"] == [{"name": "SERVICE_URL", "present": True}]

    async with tenant.client(Role.ADMIN) as admin:
        events = (await admin.get(f"{API}/audit", params={"resource_type": "workflow"})).json()["items"]
    uses = [e for e in events if e["action"] == "template.use"]
    assert len(uses) == 4
    first = next(e for e in uses if e["resource_id"] == body["workflow_id"])
    assert first["details"] == {
        "template_id": "uptime-monitor",
        "missing_credentials": ["pagerduty"],
        "missing_variables": ["SERVICE_URL"],
    }
    assert first["actor_type"] in ("api_key", "user")

    # The other tenant sees neither the workflow nor the credential as its own.
    async with other_tenant.client(Role.EDITOR) as other:
        assert (await other.get(f"{API}/workflows/{body['workflow_id']}")).status_code == 404
        theirs = (await other.post(f"{API}/templates/uptime-monitor/use")).json()
        assert {c["name"]: c["present"] for c in theirs["credentials"]} == {"slack": False, "pagerduty": False}
        assert theirs["name"] == body["name"]  # no name of the first tenant's is taken here
        listed = (await other.get(f"{API}/workflows")).json()["items"]
        assert [w["id"] for w in listed] == [theirs["workflow_id"]]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
async def test_using_a_template_needs_the_right_to_create_workflows(tenant: TenantHandle, role: Role) -> None:
    async with tenant.client(role) as client:
        assert (await client.get(f"{API}/templates")).status_code == 200
        denied = await client.post(f"{API}/templates/uptime-monitor/use")
        assert denied.status_code == 403
        assert (await client.get(f"{API}/workflows")).json()["items"] == []


async def test_anonymous_callers_see_no_templates(anon: httpx.AsyncClient) -> None:
    assert (await anon.get(f"{API}/templates")).status_code == 401
    assert (await anon.post(f"{API}/templates/uptime-monitor/use")).status_code == 401


async def test_blank_name_is_refused_naming_the_field(tenant: TenantHandle) -> None:
    async with tenant.client() as client:
        response = await client.post(f"{API}/templates/uptime-monitor/use", json={"name": "   "})
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"field": "name"}


def test_template_operations_keep_to_their_schema(api_server: Any, tenant: TenantHandle) -> None:
    """Schemathesis over the template routes only (the whole API is tests/api/test_schema_fuzz.py)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import checks as st_checks

    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {tenant.keys[Role.ADMIN]}"}
    checks = [
        st_checks.not_a_server_error,
        st_checks.status_code_conformance,
        st_checks.content_type_conformance,
        st_checks.response_schema_conformance,
    ]
    operations = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith(f"{API}/templates")]
    assert len(operations) == 3
    for operation in operations:

        @settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(base_url=api_server.url, headers=headers, checks=checks, timeout=30)

        run()
