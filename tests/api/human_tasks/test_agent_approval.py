"""An agent's approval-gated tool end to end: a real API, Prefect server and warm worker.

The model (a scripted OpenAI-compatible server on 127.0.0.1) looks an order up, then asks for a
refund, which needs an admin's approval: the run suspends on a human task that shows the call's
arguments; the reviewer edits them (checked against the tool's schema) or rejects with a reason;
the run resumes, the earlier turns come from the recorded results (no model call, no second
lookup), and the model is told the outcome.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from api.auth.permissions import Role
from tests.api.human_tasks.conftest import audit_events, execution_status, open_task, publish, steps_by_node
from tests.flows.integrations.mcp_server import serve_http
from tests.flows.integrations.peers import OpenAIPeer
from tests.peers import HttpPeer, PeerResponse

pytestmark = pytest.mark.timeout(600)
ORDER = {"id": "A-17", "status": "delivered", "total": 42.5}


def call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
        ],
    }


def triage_graph(shop: str) -> dict[str, Any]:
    graph = json.loads(open("deployments/triage-agent.json").read())
    graph["name"] = f"triage-{uuid.uuid4().hex[:6]}"
    for tool in graph["nodes"][1]["config"]["tools"]:
        tool["fixed"]["url"] = tool["fixed"]["url"].replace("{{ env.SHOP_URL }}", shop)
    return graph


@pytest.fixture
def llm_peer() -> Any:
    peer = OpenAIPeer().start()
    yield peer
    peer.stop()


@pytest.fixture
def shop() -> Any:
    peer = HttpPeer().start()
    peer.route("GET", "/orders", PeerResponse(200, ORDER))
    peer.route("POST", "/refunds", lambda req: PeerResponse(201, {"refunded": req.json()}))
    yield peer
    peer.stop()


async def _start(admin: Any, llm_peer: OpenAIPeer, shop: HttpPeer) -> str:
    created = await admin.post(
        "/api/v1/credentials",
        json={
            "name": "llm",
            "type": "llm-provider",
            "values": {
                "provider": "openai",
                "api_key": OpenAIPeer.KEY,
                "api_base": f"{llm_peer.url}/v1",
                "default_model": "gpt-4o-mini",
            },
        },
    )
    assert created.status_code in (201, 409), created.text
    workflow_id = await publish(admin, triage_graph(shop.url))
    response = await admin.post(
        f"/api/v1/workflows/{workflow_id}/execute", json={"input": {"text": "Refund my order A-17 please"}}
    )
    assert response.status_code == 202, response.text
    return response.json()["execution_id"]


async def test_reviewer_edits_the_arguments_and_the_run_resumes_from_its_recording(
    tenant: Any, worker: Any, llm_peer: OpenAIPeer, shop: HttpPeer
) -> None:
    llm_peer.answers += [
        call("lookup_order", {"query": {"id": "A-17"}}, "c1"),
        call("refund", {"json": {"order": "A-17", "amount": 42.5}}, "c2"),
        "I refunded 40.00 for order A-17.",
    ]
    async with tenant.client() as admin:
        execution_id = await _start(admin, llm_peer, shop)
        task = await open_task(admin, execution_id)
        await execution_status(admin, execution_id, "paused")
        shown = task["data"]["tool_call"]
        assert shown["tool"] == "refund" and shown["arguments"] == {"json": {"order": "A-17", "amount": 42.5}}
        assert task["options"] == [{"label": "Approve", "value": "approved"}, {"label": "Reject", "value": "rejected"}]
        assert len(shop.received("POST", "/refunds")) == 0  # nothing runs before the decision

        bad = await admin.post(
            f"/api/v1/human-tasks/{task['id']}/decide",
            json={"value": "approved", "arguments": {"json": {"order": "A-17"}, "body": "refund everything"}},
        )
        assert bad.status_code == 422, bad.text
        problem = bad.json()["error"]["details"]["errors"][0]
        assert problem["path"] == "arguments" and "'body' was unexpected" in problem["message"]
        decided = await admin.post(
            f"/api/v1/human-tasks/{task['id']}/decide",
            json={
                "value": "approved",
                "comment": "goodwill cap",
                "arguments": {"json": {"order": "A-17", "amount": 40}},
            },
        )
        assert decided.status_code == 200, decided.text
        execution = await execution_status(admin, execution_id, "completed", "failed")
        assert execution["status"] == "completed", execution
        entries = await audit_events(admin, action="human_task.decide")

    step = steps_by_node(execution)["triage"]
    assert step["output"]["output"] == "I refunded 40.00 for order A-17."
    refund = step["output"]["turns"][1]["tool_calls"][0]
    assert refund["approval"]["decision"] == "approved" and refund["approval"]["edited"] is True
    assert [r.json() for r in shop.received("POST", "/refunds")] == [{"order": "A-17", "amount": 40}]
    # The resumed run replayed turns 1-2 and the lookup from their recorded results.
    assert len(llm_peer.chats) == 3 and len(shop.received("GET")) == 1
    told = [m for m in llm_peer.chats[2]["messages"] if m["role"] == "tool"]
    assert json.loads(told[1]["content"])["approved_by"] and "40" in told[1]["content"]
    [audited] = [e for e in entries if e["resource_id"] == task["id"] and e["outcome"] == "success"]
    assert audited["after"]["arguments"] == {"json": {"order": "A-17", "amount": 40}}


async def test_a_rejection_is_told_to_the_model_as_the_tool_result(
    tenant: Any, worker: Any, llm_peer: OpenAIPeer, shop: HttpPeer
) -> None:
    llm_peer.answers += [
        call("refund", {"json": {"order": "A-17", "amount": 42.5}}, "c1"),
        "The refund was declined: the order was delivered.",
    ]
    async with tenant.client() as admin:
        execution_id = await _start(admin, llm_peer, shop)
        task = await open_task(admin, execution_id)
        decided = await admin.post(
            f"/api/v1/human-tasks/{task['id']}/decide", json={"value": "rejected", "comment": "delivered on time"}
        )
        assert decided.status_code == 200, decided.text
        execution = await execution_status(admin, execution_id, "completed", "failed")
    assert execution["status"] == "completed", execution
    assert shop.received("POST", "/refunds") == []
    told = [m for m in llm_peer.chats[1]["messages"] if m["role"] == "tool"]
    assert json.loads(told[0]["content"]) == {"rejected": True, "reason": "delivered on time"}
    assert len(llm_peer.chats) == 2


async def test_the_editor_lists_an_mcp_servers_tools_on_demand(tenant: Any) -> None:
    token = "mcp-editor-token-0123456789"
    async with tenant.client() as admin, tenant.client(Role.VIEWER) as viewer:
        created = await admin.post(
            "/api/v1/credentials",
            json={"name": "desk", "type": "http-auth", "values": {"scheme": "bearer", "token": token}},
        )
        assert created.status_code == 201, created.text
        with serve_http(token) as url:
            listed = await admin.post("/api/v1/mcp/tools", json={"server": {"url": url}, "credential": "desk"})
            assert listed.status_code == 200, listed.text
            assert [t["name"] for t in listed.json()["tools"]] == ["order_status", "shout"]
            refused = await admin.post("/api/v1/mcp/tools", json={"server": {"url": url}})
            assert refused.status_code == 502 and url in refused.json()["error"]["message"]
            unknown = await admin.post("/api/v1/mcp/tools", json={"server": {"url": url}, "credential": "nope"})
            assert unknown.status_code == 422, unknown.text
            forbidden = await viewer.post("/api/v1/mcp/tools", json={"server": {"url": url}})
            assert forbidden.status_code == 403
        both = await admin.post("/api/v1/mcp/tools", json={"server": {"url": "http://x", "stdio": "desk"}})
        assert both.status_code == 422
        undeclared = await admin.post("/api/v1/mcp/tools", json={"server": {"stdio": "desk"}})
        assert undeclared.status_code == 422 and "no stdio MCP server 'desk' is declared" in undeclared.text
