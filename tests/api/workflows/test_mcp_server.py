"""Gorax as an MCP server: the mcp SDK's client over streamable HTTP against the API on 127.0.0.1,
real Prefect and the warm worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from api.app import create_app
from api.auth.permissions import Role
from api.db.engine import Database
from api.mcp import FORBIDDEN, NOT_FOUND, RATE_LIMITED
from tests.api.conftest import ApiServer, ServerThread, TenantHandle, api_settings, make_settings, new_tenant
from tests.api.workflows.conftest import create, graph, publish, transform
from tests.flows.worker.conftest import WorkerProcess

API = "/api/v1"
INVALID_PARAMS = -32602
SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "description": "The number to double."}},
    "required": ["n"],
}


@asynccontextmanager
async def mcp_session(base_url: str, key: str) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session authenticated with ``key``."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(120)) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def _doubler(name: str) -> dict[str, Any]:
    g = graph(
        name,
        transform("shape", {"doubled": "{{ trigger.n * 2 }}"}),
        {
            "id": "done",
            "type": "control.output",
            "position": {"x": 0, "y": 200},
            "config": {"value": {"doubled": "{{ steps.shape.doubled }}"}},
        },
    )
    # A new node dict: the graph helper shares its trigger node (MANUAL) with other test files.
    g["nodes"][0] = {**g["nodes"][0], "config": {"input_schema": SCHEMA}}
    return g


async def _tool(client: httpx.AsyncClient, g: dict[str, Any], *, name: str | None, publish_it: bool = True) -> str:
    wid = (await create(client, g))["id"]
    if publish_it:
        await publish(client, wid)
    if name is not None:
        put = await client.put(
            f"{API}/workflows/{wid}/mcp-tool", json={"enabled": True, "name": name, "description": f"{name} tool"}
        )
        assert put.status_code == 200, put.text
        assert put.json() == {
            "workflow_id": wid,
            "enabled": True,
            "name": name,
            "description": f"{name} tool",
            "published": publish_it,
        }
    return wid


async def test_tools_are_the_tenants_opted_in_published_workflows(
    run_tenant: TenantHandle, sq_other: TenantHandle
) -> None:
    async with run_tenant.client() as admin, sq_other.client() as other:
        wid = await _tool(admin, _doubler("doubler"), name="double_it")
        await _tool(admin, _doubler("not opted in"), name=None)
        await _tool(admin, _doubler("draft only"), name="draft_tool", publish_it=False)
        off = await _tool(admin, _doubler("switched off"), name="off_tool")
        assert (await admin.put(f"{API}/workflows/{off}/mcp-tool", json={"enabled": False})).status_code == 200
        await _tool(other, _doubler("theirs"), name="their_tool")

        async with mcp_session(run_tenant.base_url, run_tenant.keys[Role.EDITOR]) as session:
            listed = await session.list_tools()
            assert [t.name for t in listed.tools] == ["double_it"]
            assert listed.tools[0].description == "double_it tool"
            assert listed.tools[0].input_schema == SCHEMA

            result = await session.call_tool("double_it", {"n": 21})
            assert not result.is_error
            assert result.structured_content["status"] == "completed"
            assert result.structured_content["output"] == {"doubled": 42}
            assert result.content[0].text == '{"doubled": 42}'
            execution_id = result.structured_content["execution_id"]

            with pytest.raises(MCPError) as bad:
                await session.call_tool("double_it", {"n": "twenty-one"})
            assert bad.value.code == INVALID_PARAMS and "n: 'twenty-one' is not of type 'integer'" in bad.value.message
            for name in ("their_tool", "draft_tool", "off_tool"):
                with pytest.raises(MCPError) as missing:
                    await session.call_tool(name, {"n": 1})
                assert missing.value.code == NOT_FOUND and name in missing.value.message

        async with mcp_session(sq_other.base_url, sq_other.keys[Role.VIEWER]) as theirs:
            assert [t.name for t in (await theirs.list_tools()).tools] == ["their_tool"]

        # A viewer lists the tools but may not run them: an MCP error, audited as denied.
        async with mcp_session(run_tenant.base_url, run_tenant.keys[Role.VIEWER]) as viewer:
            assert [t.name for t in (await viewer.list_tools()).tools] == ["double_it"]
            with pytest.raises(MCPError) as refused:
                await viewer.call_tool("double_it", {"n": 1})
            assert refused.value.code == FORBIDDEN and "execution:run" in refused.value.message

        run = (await admin.get(f"{API}/executions/{execution_id}")).json()
        assert run["workflow_id"] == wid and run["trigger_type"] == "mcp" and run["input"] == {"n": 21}
        events = (await admin.get(f"{API}/audit", params={"action": "mcp.tool_call"})).json()["items"]
        keys = {k["name"]: k["id"] for k in (await admin.get(f"{API}/api-keys")).json()["items"]}
        assert [(e["outcome"], e["actor_id"], e["details"]["tool"]) for e in events] == [
            ("denied", keys["viewer"], "double_it"),
            ("success", keys["editor"], "double_it"),
        ]
        assert events[1]["details"]["execution_id"] == execution_id and events[1]["resource_id"] == wid
        assert (await other.get(f"{API}/audit", params={"action": "mcp.tool_call"})).json()["items"] == []
        settings = (await admin.get(f"{API}/audit", params={"action": "workflow.mcp_tool"})).json()["items"]
        assert settings[0]["resource_id"] == off and settings[0]["after"]["enabled"] is False


async def test_unauthenticated_and_unknown_keys_are_refused(run_tenant: TenantHandle) -> None:
    with pytest.raises(BaseException) as raised:
        async with mcp_session(run_tenant.base_url, "gx_nope_" + uuid.uuid4().hex):
            pass
    refused = raised.value
    while isinstance(refused, BaseExceptionGroup):  # the client's task group wraps it
        refused = refused.exceptions[0]
    assert isinstance(refused, MCPError) and refused.message == "invalid API key"
    assert refused.data["code"] == "UNAUTHORIZED"
    async with httpx.AsyncClient(base_url=run_tenant.base_url) as anon:
        response = await anon.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "authentication required"


async def test_setting_is_validated_edited_by_editors_and_tenant_scoped(
    sq_tenant: TenantHandle, sq_other: TenantHandle
) -> None:
    async with sq_tenant.client() as admin, sq_tenant.client(Role.VIEWER) as viewer, sq_other.client() as other:
        first = await _tool(admin, _doubler("First Workflow!"), name=None, publish_it=False)
        default = (await admin.get(f"{API}/workflows/{first}/mcp-tool")).json()
        assert default == {
            "workflow_id": first,
            "enabled": False,
            "name": "first_workflow",
            "description": "",
            "published": False,
        }
        bad = await admin.put(f"{API}/workflows/{first}/mcp-tool", json={"enabled": True, "name": "no spaces"})
        assert bad.status_code == 422 and bad.json()["error"]["details"]["errors"][0]["path"] == "mcp_tool.name"
        assert (await admin.put(f"{API}/workflows/{first}/mcp-tool", json={"enabled": True})).status_code == 200
        second = await _tool(admin, _doubler("second"), name=None, publish_it=False)
        clash = await admin.put(f"{API}/workflows/{second}/mcp-tool", json={"enabled": True, "name": "first_workflow"})
        assert clash.status_code == 409 and clash.json()["error"]["details"]["workflow_id"] == first
        denied = await viewer.put(f"{API}/workflows/{first}/mcp-tool", json={"enabled": False})
        assert denied.status_code == 403
        assert (await other.get(f"{API}/workflows/{first}/mcp-tool")).status_code == 404
        assert (await other.put(f"{API}/workflows/{first}/mcp-tool", json={"enabled": False})).status_code == 404
        assert (await admin.get(f"{API}/workflows/{first}/mcp-tool")).json()["enabled"] is True


@pytest.fixture
async def limited(wf_pool: str, sqlite_url: str, wf_worker: WorkerProcess) -> AsyncIterator[tuple[ApiServer, Database]]:
    """An API with a small MCP rate limit that never waits for a tool's run."""
    settings = make_settings(sqlite_url, api=api_settings(rate_limit_mcp=8, mcp_call_wait_seconds=0), work_pool=wf_pool)
    app = create_app(settings)
    thread = ServerThread(app).start()
    database = Database(sqlite_url)
    yield ApiServer(thread.url, sqlite_url, settings, app), database
    await database.dispose()
    thread.stop()


async def test_long_runs_answer_their_id_and_the_rate_limit_holds(
    limited: tuple[ApiServer, Database],
) -> None:
    server, database = limited
    tenant = await new_tenant(database, server.url)
    async with tenant.client() as admin:
        await _tool(admin, _doubler("slowpoke"), name="slow")
        async with mcp_session(server.url, tenant.keys[Role.OPERATOR]) as session:
            # Not waited for: the run id, and the run goes on to complete.
            result = await session.call_tool("slow", {"n": 2})
            assert result.structured_content["status"] == "running" and not result.is_error
            execution_id = result.structured_content["execution_id"]
            assert execution_id in result.content[0].text
            refused = None
            for _ in range(10):
                try:
                    await session.list_tools()
                except MCPError as exc:
                    refused = exc
                    break
            assert refused is not None and refused.code == RATE_LIMITED
            assert "rate limit" in refused.message and refused.data["code"] == "RATE_LIMITED"
        for _ in range(240):
            run = (await admin.get(f"{API}/executions/{execution_id}")).json()
            if run["status"] == "completed":
                break
            await asyncio.sleep(0.25)
        assert run["status"] == "completed" and run["output"] == {"doubled": 4}
