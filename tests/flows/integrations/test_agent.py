"""``ai.agent`` through run_graph: a scripted OpenAI-compatible server on 127.0.0.1 answers with
tool calls (invalid arguments, a tool that fails, a good call) and a final answer; the tool is
``http.request`` against a loopback peer; credentials are sealed credentials of a fresh tenant."""

from __future__ import annotations

import ipaddress
import json
import sys
import uuid
from typing import Any

import pytest

from blocks.service import create_credential
from flows import mcp, read_steps
from flows.nodes.agent import Agent
from flows.run_graph import run_graph
from tests.flows.conftest import Resolver
from tests.flows.graphs.conftest import task_runs
from tests.flows.integrations.conftest import set_env
from tests.flows.integrations.mcp_server import REBIND_HOST, serve_http
from tests.flows.integrations.peers import OpenAIPeer
from tests.peers import HttpPeer, PeerResponse

ORDER = {"id": "A-17", "status": "delivered", "total": 42.5}
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"order": {"type": "string"}, "action": {"enum": ["refund", "none"]}},
    "required": ["order", "action"],
    "additionalProperties": False,
}


def call(name: str, arguments: Any, call_id: str) -> dict[str, Any]:
    """A scripted assistant message with one tool call (``arguments`` as the model sends them)."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}],
    }


def agent_graph(shop: str, **config: Any) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": "triage",
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {}},
            {
                "id": "triage",
                "type": Agent.type,
                "config": {
                    "credential": "llm",
                    "system": "You triage customer messages.",
                    "task": "Customer says: {{ trigger.text }}",
                    "tools": [
                        {
                            "kind": "node",
                            "type": "http.request",
                            "name": "lookup_order",
                            "description": "Look up an order by id.",
                            "fixed": {"method": "GET", "url": f"{shop}/orders"},
                            "open": ["query"],
                        }
                    ],
                    **config,
                },
            },
        ],
        "edges": [{"source": "start", "target": "triage"}],
    }


SLUGS: dict[str, str] = {}


@pytest.fixture
async def tenant(llm_peer: OpenAIPeer) -> str:
    tenant_id = str(uuid.uuid4())
    SLUGS[tenant_id] = f"agent{uuid.uuid4().hex[:8]}"
    await create_credential(
        "llm",
        "llm-provider",
        {
            "provider": "openai",
            "api_key": OpenAIPeer.KEY,
            "api_base": f"{llm_peer.url}/v1",
            "default_model": "gpt-4o-mini",
        },
        tenant_id=tenant_id,
        tenant_slug=SLUGS[tenant_id],
    )
    return tenant_id


@pytest.fixture
def shop() -> Any:
    peer = HttpPeer().start()
    yield peer
    peer.stop()


@pytest.mark.timeout(600)
async def test_agent_loop_tools_errors_and_structured_answer(
    prefect_server: Any, llm_peer: OpenAIPeer, tenant: str, shop: HttpPeer
) -> None:
    answers = iter([PeerResponse(500, {"error": "database down"}), PeerResponse(200, ORDER)])
    shop.route("GET", "/orders", lambda _req: next(answers))
    llm_peer.answers += [
        call("lookup_order", "{not json", "c1"),  # arguments that are not JSON
        call("lookup_order", {"query": "A-17"}, "c2"),  # not an object: the tool's schema says so
        call("lookup_order", {"query": {"id": "A-17"}}, "c3"),  # the shop answers 500: a tool error
        call("lookup_order", {"query": {"id": "A-17"}}, "c4"),  # the order
        "The order was delivered.",  # not the JSON the schema asks for
        json.dumps({"order": "A-17", "action": "none"}),
    ]
    state = await run_graph(
        graph=agent_graph(shop.url, output_schema=ANSWER_SCHEMA, max_iterations=8),
        trigger={"text": "Where is my order A-17?"},
        tenant=tenant,
        return_state=True,
    )
    assert state.is_completed(), state.message
    result = await state.result()
    assert result["output"] == {"order": "A-17", "action": "none"}
    usage = result["usage"]
    assert usage["llm_calls"] == 6 and usage["tool_calls"] == 2  # only valid calls run
    assert usage["tokens_in"] > 0 and usage["tokens_out"] > 0 and usage["model"] == "gpt-4o-mini"
    assert usage["cost_usd"] > 0  # litellm's price of gpt-4o-mini

    # What the model was told after each call.
    told = [m for m in llm_peer.chats[4]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in told] == ["c1", "c2", "c3", "c4"]
    assert "not JSON" in told[0]["content"]
    assert "invalid arguments: at query: 'A-17' is not of type 'object'" in told[1]["content"]
    assert "500" in told[2]["content"]
    assert json.loads(told[3]["content"])["body"] == ORDER
    assert "That reply is invalid: not JSON" in llm_peer.chats[5]["messages"][-1]["content"]
    # The tools went out with the schema of the open field only.
    spec = llm_peer.chats[0]["tools"][0]["function"]
    assert spec["name"] == "lookup_order" and list(spec["parameters"]["properties"]) == ["query"]
    assert [r.path for r in shop.received()] == ["/orders?id=A-17", "/orders?id=A-17"]

    # Each model call and tool call is a task run of its own, named after it.
    flow_run_id = state.state_details.flow_run_id
    names = sorted(r.name for r in await task_runs(flow_run_id, count=10))
    assert names == sorted(
        ["start", "triage", *(f"llm[{i}]" for i in range(1, 7)), "lookup_order[3]", "lookup_order[4]"]
    )
    # The step record shows the reasoning turn by turn, with usage for analytics.
    [record] = [s for s in await read_steps(flow_run_id) if s.node_id == "triage"]
    assert record.status == "completed"
    turns = record.output["turns"]
    assert [len(t["tool_calls"]) for t in turns] == [1, 1, 1, 1, 0, 0]
    assert turns[2]["tool_calls"][0]["status"] == "error" and turns[3]["tool_calls"][0]["status"] == "ok"
    assert all(t["latency_ms"] >= 0 and t["tokens_in"] > 0 for t in turns)
    assert record.output["usage"] == usage


@pytest.mark.timeout(600)
async def test_a_rerun_takes_the_recorded_turns_and_calls_the_model_only_for_new_ones(
    prefect_server: Any, llm_peer: OpenAIPeer, tenant: str, shop: HttpPeer
) -> None:
    shop.route("GET", "/orders", PeerResponse(200, ORDER))
    llm_peer.answers += [
        call("lookup_order", {"query": {"id": "A-17"}}, "c1"),
        (503, {"error": {"message": "overloaded", "type": "server_error"}}),  # turn 2 fails: the node fails
        "Delivered on Monday.",  # the retry's turn 2
    ]
    graph = agent_graph(shop.url)
    graph["nodes"][1]["retry"] = {"attempts": 1, "delay_seconds": 0}
    state = await run_graph(graph=graph, trigger={"text": "Where is A-17?"}, tenant=tenant, return_state=True)
    assert state.is_completed(), state.message
    result = await state.result()
    assert result["output"] == "Delivered on Monday."
    # Turn 1 and its tool call came from the recorded results: 3 model calls, not 4; one lookup.
    assert len(llm_peer.chats) == 3 and len(shop.received()) == 1
    assert llm_peer.chats[2]["messages"] == llm_peer.chats[1]["messages"]  # the same turn again, unchanged
    assert result["usage"]["llm_calls"] == 2 and result["usage"]["tool_calls"] == 1


@pytest.mark.timeout(600)
async def test_a_budget_ends_the_node_with_a_clear_error(
    prefect_server: Any, llm_peer: OpenAIPeer, tenant: str, shop: HttpPeer
) -> None:
    shop.route("GET", "/orders", PeerResponse(200, ORDER))
    llm_peer.answers += [call("lookup_order", {"query": {"id": "A-17"}}, "c1"), call("lookup_order", {}, "c2")]
    state = await run_graph(
        graph=agent_graph(shop.url, budget={"max_tool_calls": 1}),
        trigger={"text": "Where is A-17?"},
        tenant=tenant,
        return_state=True,
    )
    assert state.is_failed()
    [record] = [s for s in await read_steps(state.state_details.flow_run_id) if s.node_id == "triage"]
    message = record.error["message"]
    assert "budget.max_tool_calls of 1 exceeded: 2 tool calls used" in message and "triage" in message
    assert len(shop.received()) == 1

    llm_peer.answers += ["a long answer " * 50]
    state = await run_graph(
        graph=agent_graph(shop.url, budget={"max_tokens": 20}),
        trigger={"text": "Where is A-17?"},
        tenant=tenant,
        return_state=True,
    )
    assert state.is_failed()
    [record] = [s for s in await read_steps(state.state_details.flow_run_id) if s.node_id == "triage"]
    assert "budget.max_tokens of 20 exceeded" in record.error["message"]


def test_tool_sources_are_checked_with_their_field_named() -> None:
    base = {"credential": "llm", "task": "x"}
    with pytest.raises(ValueError, match=r"(?s)tools\.0\.node.*no node type 'nope\.nope'"):
        Agent.Config.model_validate({**base, "tools": [{"kind": "node", "type": "nope.nope"}]})
    with pytest.raises(ValueError, match="open: 'http.request' has no config field 'bogus'"):
        Agent.Config.model_validate({**base, "tools": [{"kind": "node", "type": "http.request", "open": ["bogus"]}]})
    with pytest.raises(ValueError, match="open: 'credential' names a credential"):
        Agent.Config.model_validate(
            {**base, "tools": [{"kind": "node", "type": "http.request", "open": ["url", "credential"]}]}
        )
    with pytest.raises(ValueError, match="a tool that requires approval needs 'approvers'"):
        Agent.Config.model_validate(
            {
                **base,
                "tools": [
                    {"kind": "workflow", "workflow_id": "w", "name": "w", "description": "d", "requires_approval": True}
                ],
            }
        )
    with pytest.raises(ValueError, match="set exactly one of 'url' and 'stdio'"):
        Agent.Config.model_validate({**base, "tools": [{"kind": "mcp", "server": {}}]})
    with pytest.raises(ValueError, match=r"tools\[1\]\.name: 'w' is also the name of tools\[0\]"):
        tool = {"kind": "workflow", "workflow_id": "w", "name": "w", "description": "d"}
        Agent.Config.model_validate({**base, "tools": [tool, tool]})


@pytest.fixture(scope="module")
def mcp_http() -> Any:
    """The local MCP server over streamable HTTP on 127.0.0.1, behind a bearer token."""
    with serve_http(MCP_TOKEN) as url:
        yield url


MCP_TOKEN = "mcp-token-0123456789-do-not-log"


@pytest.fixture
def stdio_desk(monkeypatch: pytest.MonkeyPatch) -> str:
    """The same server as a stdio server the operator declared as ``desk``."""
    declared = {"desk": {"command": sys.executable, "args": ["-m", "tests.flows.integrations.mcp_server", "stdio"]}}
    set_env(monkeypatch, GORAX_MCP_STDIO_SERVERS=json.dumps(declared))
    return "desk"


async def test_mcp_tools_are_listed_on_demand_and_guarded(mcp_http: str, stdio_desk: str) -> None:
    loopback = [ipaddress.ip_network("127.0.0.0/8")]
    headers = {"Authorization": f"Bearer {MCP_TOKEN}"}
    listed = await mcp.list_tools(url=mcp_http, headers=headers, allowed=loopback)
    assert [t["name"] for t in listed] == ["order_status", "shout"]
    assert listed[0]["input_schema"]["required"] == ["order_id"]
    assert [t["name"] for t in await mcp.list_tools(stdio=stdio_desk)] == ["order_status", "shout"]
    with pytest.raises(mcp.McpError, match="loopback address"):
        await mcp.list_tools(url=mcp_http, headers=headers, allowed=[])
    with pytest.raises(mcp.McpError, match=f"listing the tools of MCP server {mcp_http} failed"):
        await mcp.list_tools(url=mcp_http, allowed=loopback)  # no token
    with pytest.raises(mcp.McpError, match=r"no stdio MCP server 'rm -rf' is declared \(.*declares: desk\)"):
        await mcp.list_tools(stdio="rm -rf")


async def test_mcp_sessions_connect_to_the_address_the_guard_checked(mcp_http: str, resolver: Resolver) -> None:
    # DNS rebinding: the name's first answer passes the guard, later ones point elsewhere (another
    # loopback address, where nothing listens). Every request of the session goes to the checked
    # address, with the name as its Host (the server's own rebinding protection accepts it).
    resolver.answers[REBIND_HOST] = [("127.0.0.1",), ("127.0.0.2",)]
    url = mcp_http.replace("127.0.0.1", REBIND_HOST)
    loopback = [ipaddress.ip_network("127.0.0.0/8")]
    headers = {"Authorization": f"Bearer {MCP_TOKEN}"}
    called = await mcp.call_tool("shout", {"text": "pinned"}, url=url, headers=headers, allowed=loopback)
    assert called == {"is_error": False, "content": {"result": "PINNED"}}
    assert resolver.asked == [REBIND_HOST]  # once, by the guard: the session's requests did not ask
    resolver.answers[REBIND_HOST] = [("127.0.0.1",), ("127.0.0.2",)]
    listed = await mcp.list_tools(url=url, headers=headers, allowed=loopback)
    assert [t["name"] for t in listed] == ["order_status", "shout"]
    assert resolver.asked == [REBIND_HOST, REBIND_HOST]


@pytest.mark.timeout(600)
async def test_agent_calls_mcp_tools_over_http_and_stdio(
    prefect_server: Any, llm_peer: OpenAIPeer, tenant: str, mcp_http: str, stdio_desk: str
) -> None:
    await create_credential(
        "desk_token", "http-auth", {"scheme": "bearer", "token": MCP_TOKEN}, tenant_id=tenant, tenant_slug=SLUGS[tenant]
    )
    llm_peer.answers += [
        call("order_status", {"order_id": "A-17"}, "c1"),
        call("order_status", {"order_id": "Z-9"}, "c2"),  # the server answers with a tool error
        call("desk_shout", {"text": "done"}, "c3"),
        "A-17 was delivered.",
    ]
    graph = agent_graph("http://127.0.0.1:9")
    graph["nodes"][1]["config"]["tools"] = [
        {"kind": "mcp", "server": {"url": mcp_http}, "credential": "desk_token", "tools": ["order_status"]},
        {"kind": "mcp", "server": {"stdio": stdio_desk}, "tools": ["shout"], "prefix": "desk_"},
    ]
    state = await run_graph(graph=graph, trigger={"text": "Where is A-17?"}, tenant=tenant, return_state=True)
    assert state.is_completed(), state.message
    result = await state.result()
    assert result["output"] == "A-17 was delivered."
    assert [t["function"]["name"] for t in llm_peer.chats[0]["tools"]] == ["order_status", "desk_shout"]
    told = [m for m in llm_peer.chats[3]["messages"] if m["role"] == "tool"]
    assert json.loads(told[0]["content"]) == {"id": "A-17", "status": "delivered", "total": 42.5}
    assert "no order Z-9" in told[1]["content"]
    assert json.loads(told[2]["content"]) == {"result": "DONE"}
    names = sorted(r.name for r in await task_runs(state.state_details.flow_run_id, count=11))
    assert "order_status[1]" in names and "desk_shout[3]" in names and "tools[0] list" in names
    [record] = [s for s in await read_steps(state.state_details.flow_run_id) if s.node_id == "triage"]
    assert MCP_TOKEN not in json.dumps(record.output)
