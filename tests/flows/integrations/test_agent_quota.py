"""Per-tenant monthly agent budgets through a real API (its database counts usage for every
worker), the real Prefect server (the limits travel in the tenant's Variable) and the scripted
OpenAI-compatible peer: a run within the budget records what it used, the next run past it ends
before its model call, a tool-call budget ends the node before the tool runs, and the count is
exact when many workers add at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prefect.client.orchestration import get_client

from api.app import create_app
from api.db.engine import Database
from api.services import quotas
from api.services.audit import AuditContext
from api.services.identity import create_tenant_with_admin
from blocks.service import create_credential
from flows import read_steps
from flows.run_graph import run_graph
from tests.api.conftest import _SHARED_CONFIG, TEST_WORKER_TOKEN, ServerThread, TenantHandle, make_settings, new_tenant
from tests.flows.integrations.conftest import set_env
from tests.flows.integrations.peers import OpenAIPeer
from tests.flows.integrations.test_agent import ORDER, agent_graph, call
from tests.peers import HttpPeer, PeerResponse


@pytest.fixture(scope="module")
def api(sqlite_url: str, prefect_server: Any) -> Iterator[ServerThread]:
    settings = make_settings(sqlite_url.replace(".db", "-aq.db"), api=_SHARED_CONFIG)
    thread = ServerThread(create_app(settings)).start()
    yield thread
    thread.stop()


@pytest.fixture
async def database(sqlite_url: str, api: ServerThread) -> Any:
    db = Database(sqlite_url.replace(".db", "-aq.db"))
    yield db
    await db.dispose()


@pytest.fixture
async def tenant(database: Database, api: ServerThread, llm_peer: OpenAIPeer, monkeypatch: pytest.MonkeyPatch) -> Any:
    handle = await new_tenant(database, api.url)
    await create_credential(
        "llm",
        "llm-provider",
        {
            "provider": "openai",
            "api_key": OpenAIPeer.KEY,
            "api_base": f"{llm_peer.url}/v1",
            "default_model": "gpt-4o-mini",
        },
        tenant_id=handle.id,
        tenant_slug=f"aq{uuid.uuid4().hex[:8]}",
    )
    set_env(monkeypatch, GORAX_API_URL=api.url, GORAX_WORKER_TOKEN=TEST_WORKER_TOKEN)
    return handle


@pytest.fixture
def shop() -> Any:
    peer = HttpPeer().start()
    yield peer
    peer.stop()


async def _set(database: Database, tenant: TenantHandle, **values: Any) -> None:
    async with get_client() as prefect:
        await quotas.set_tenant_quota(
            database,
            prefect,
            tenant_ref=tenant.id,
            values=values,
            config=_SHARED_CONFIG,
            context=AuditContext.system("tests"),
        )


async def _usage(tenant: TenantHandle) -> dict[str, dict[str, Any]]:
    async with tenant.client() as client:
        response = await client.get("/api/v1/tenant/usage")
    assert response.status_code == 200, response.text
    return {item["name"]: item for item in response.json()["items"]}


async def _error(state: Any) -> str:
    assert state.is_failed()
    [record] = [s for s in await read_steps(state.state_details.flow_run_id) if s.node_id == "triage"]
    return str(record.error["message"])


@pytest.mark.timeout(600)
async def test_tenant_token_budget_counts_runs_and_refuses_past_it(
    database: Database, tenant: TenantHandle, llm_peer: OpenAIPeer, shop: HttpPeer
) -> None:
    shop.route("GET", "/orders", PeerResponse(200, ORDER))
    await _set(database, tenant, agent_tokens_per_month=40)
    llm_peer.answers += [call("lookup_order", {"query": {"id": "A-17"}}, "c1"), "Delivered."]
    state = await run_graph(
        graph=agent_graph(shop.url), trigger={"text": "Where is A-17?"}, tenant=tenant.id, return_state=True
    )
    assert state.is_completed(), state.message
    spent = (await state.result())["usage"]  # type: ignore[union-attr]
    usage = await _usage(tenant)
    tokens = usage["agent_tokens_per_month"]
    assert tokens["limit"] == 40 and tokens["source"] == "tenant" and tokens["unit"] == "tokens"
    assert tokens["used"] == spent["tokens_in"] + spent["tokens_out"] >= 40  # the two calls went past it
    assert tokens["resets_at"]
    assert usage["agent_cost_usd_per_month"]["used"] == pytest.approx(spent["cost_usd"]) and spent["cost_usd"] > 0
    assert usage["agent_tool_calls_per_month"]["used"] == 1
    assert usage["agent_tool_calls_per_month"]["unlimited"] is True
    assert usage["agent_cost_usd_per_month"]["used"] >= 0

    # The next run is refused before its first model call, naming limit, used, limit and reset.
    chats = len(llm_peer.chats)
    llm_peer.answers += ["never asked"]
    state = await run_graph(
        graph=agent_graph(shop.url), trigger={"text": "Again?"}, tenant=tenant.id, return_state=True
    )
    message = await _error(state)
    assert "agent_tokens_per_month" in message and "triage" in message
    assert f"{tokens['used']:,} tokens used this month of 40 tokens" in message
    reset = quotas.month_window()[1]
    assert tokens["resets_at"].startswith(reset.strftime("%Y-%m-%dT%H:%M:%S"))
    assert f"it resets at {reset.strftime('%Y-%m-%dT%H:%M:%S')}" in message
    assert "refused before model call 1" in message
    assert len(llm_peer.chats) == chats
    llm_peer.answers.clear()

    # Back to unlimited: agents run again.
    await _set(database, tenant, agent_tokens_per_month=0)
    llm_peer.answers += ["Delivered."]
    state = await run_graph(
        graph=agent_graph(shop.url), trigger={"text": "And now?"}, tenant=tenant.id, return_state=True
    )
    assert state.is_completed()


@pytest.mark.timeout(600)
async def test_tenant_tool_call_budget_ends_the_node_before_the_tool_runs(
    database: Database, tenant: TenantHandle, llm_peer: OpenAIPeer, shop: HttpPeer
) -> None:
    shop.route("GET", "/orders", PeerResponse(200, ORDER))
    await _set(database, tenant, agent_tool_calls_per_month=1, agent_cost_usd_per_month=0.5)
    llm_peer.answers += [
        call("lookup_order", {"query": {"id": "A-17"}}, "c1"),
        call("lookup_order", {"query": {"id": "B"}}, "c2"),
    ]
    state = await run_graph(
        graph=agent_graph(shop.url), trigger={"text": "Where is A-17?"}, tenant=tenant.id, return_state=True
    )
    message = await _error(state)
    assert "agent_tool_calls_per_month quota is used up: 1 tool calls used this month of 1 tool calls" in message
    assert "before tool call 'lookup_order' of model call 2" in message
    assert len(shop.received()) == 1  # the second call never reached the shop
    usage = await _usage(tenant)
    assert usage["agent_tool_calls_per_month"]["used"] == 1
    assert usage["agent_cost_usd_per_month"]["limit"] == 0.5
    assert usage["agent_tokens_per_month"]["used"] > 0  # counted although that limit is unlimited now


async def test_concurrent_workers_add_without_losing_any(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.migrate()
        created = await create_tenant_with_admin(db, name="Q", admin_email=f"q-{uuid.uuid4().hex[:6]}@t.test")
        tenant_id, other_id = (
            created["tenant_id"],
            (await create_tenant_with_admin(db, name="R", admin_email=f"r-{uuid.uuid4().hex[:6]}@t.test"))["tenant_id"],
        )
        await asyncio.gather(
            *[
                quotas.add_agent_usage(db, tenant_id=tenant_id, tokens=10, cost_usd=0.25, tool_calls=1)
                for _ in range(20)
            ]
        )
        async with db.tenant_scope(tenant_id=tenant_id) as session:
            used = await quotas.agent_usage(session, tenant_id=tenant_id)
        assert used == {
            "agent_tokens_per_month": 200,
            "agent_cost_usd_per_month": 5.0,
            "agent_tool_calls_per_month": 20,
        }
        assert await quotas.add_agent_usage(db, tenant_id=other_id, tokens=0, cost_usd=0, tool_calls=0) == {
            "agent_tokens_per_month": 0,
            "agent_cost_usd_per_month": 0.0,
            "agent_tool_calls_per_month": 0,
        }
    finally:
        await db.dispose()
