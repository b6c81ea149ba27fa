"""An agent's MCP tool source in the editor, in headless Chromium against the real API and a real
MCP server on 127.0.0.1: "List tools" shows the server's tools, a ticked box writes the chosen
names into the source's ``tools`` in the draft, and the route's errors show beside the button."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.flows.integrations.mcp_server import serve_http
from tests.web.conftest import Session, WebApi

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def _graph(url: str, desk: str) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": "mcp picker",
        "nodes": [
            {"id": "start", "type": "trigger.manual", "position": {"x": 200, "y": 0}, "config": {}},
            {
                "id": "helper",
                "type": "ai.agent",
                "position": {"x": 200, "y": 150},
                "config": {
                    "credential": "llm",
                    "task": "Answer {{ trigger.question }}",
                    "tools": [
                        {"kind": "mcp", "server": {"url": url}, "credential": desk, "prefix": "desk_"},
                        {"kind": "mcp", "server": {"url": url}, "credential": "no_such_credential"},
                    ],
                },
            },
        ],
        "edges": [{"id": "e1", "source": "start", "target": "helper"}],
    }


async def test_list_an_mcp_servers_tools_and_choose_one(sign_in: Any, web_api: WebApi) -> None:
    tag = uuid.uuid4().hex[:6]
    token = f"picker-token-{tag}-0123456789"
    desk = f"desk_{tag}"
    headers = {"Authorization": f"Bearer {web_api.users['admin'].api_key}"}
    with serve_http(token) as url:
        async with httpx.AsyncClient(base_url=web_api.url + "/api/v1", headers=headers, timeout=60) as c:
            made = await c.post(
                "/credentials",
                json={"name": desk, "type": "http-auth", "values": {"scheme": "bearer", "token": token}},
            )
            assert made.status_code == 201, made.text
            created = await c.post("/workflows", json={"name": f"mcp picker {tag}", "graph": _graph(url, desk)})
            assert created.status_code == 201, created.text
            wid = created.json()["id"]

            s: Session = await sign_in("editor")
            page = s.page
            await page.goto(f"{web_api.url}/workflows/{wid}")
            await page.get_by_test_id("connection").filter(has_text="connected").wait_for()
            await page.get_by_test_id("node-helper").click()
            props = page.get_by_role("complementary", name="Properties of helper")

            # The first source: its tools with their descriptions, all ticked (no list chosen yet).
            first = props.get_by_test_id("mcp-source-0")
            assert "All of the server's tools" in await first.inner_text()
            await first.get_by_role("button", name="List tools").click()
            shout = first.get_by_role("checkbox", name="shout")
            await shout.wait_for()
            assert "The text in capitals." in await first.inner_text()
            assert "The status of an order." in await first.inner_text()
            assert await shout.is_checked() and await first.get_by_role("checkbox", name="order_status").is_checked()

            # Untick one: the other is the source's chosen list, in the draft the API keeps.
            await shout.click()  # the box follows the draft once the change is applied
            await first.filter(has_text="Chosen: order_status.").wait_for()
            assert not await shout.is_checked()
            draft = await _draft(c, wid, lambda g: "tools" in _sources(g)[0])
            assert _sources(draft)[0] == {
                "kind": "mcp",
                "server": {"url": url},
                "credential": desk,
                "prefix": "desk_",
                "tools": ["order_status"],
            }
            # The other source is untouched.
            assert _sources(draft)[1] == {"kind": "mcp", "server": {"url": url}, "credential": "no_such_credential"}

            # Tick it again: both, in the server's order.
            await shout.click()
            await first.filter(has_text="Chosen: order_status, shout.").wait_for()
            draft = await _draft(c, wid, lambda g: len(_sources(g)[0].get("tools", [])) == 2)
            assert _sources(draft)[0]["tools"] == ["order_status", "shout"]

            # The second source names a credential the tenant lacks: the route's 422 beside its button.
            second = props.get_by_test_id("mcp-source-1")
            await second.get_by_role("button", name="List tools").click()
            alert = second.get_by_role("alert")
            await alert.wait_for()
            assert "no_such_credential" in await alert.inner_text()
            assert await second.get_by_role("checkbox").count() == 0
            assert "tools" not in _sources(await _draft(c, wid, lambda g: True))[1]
            await s.shot("editor-mcp-tools-picker")
            assert s.errors == []


async def _draft(c: httpx.AsyncClient, workflow_id: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The draft the API keeps, once ``ready`` holds for it (the editor's change travels through
    the collaboration room) or after 15 s, whichever comes first."""
    deadline = time.monotonic() + 15
    while True:
        r = await c.get(f"/workflows/{workflow_id}")
        assert r.status_code == 200, r.text
        graph: dict[str, Any] = r.json()["graph"]
        if ready(graph) or time.monotonic() > deadline:
            return graph
        await asyncio.sleep(0.1)


def _sources(graph: dict[str, Any]) -> list[dict[str, Any]]:
    helper = next(n for n in graph["nodes"] if n["id"] == "helper")
    tools: list[dict[str, Any]] = helper["config"]["tools"]
    return tools
