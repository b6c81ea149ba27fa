"""The MCP tool setting in the workflow's settings, in the browser: an editor offers a published
workflow as a tool and renames it (an MCP client then lists it), a viewer cannot change it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.api.workflows.test_mcp_server import mcp_session
from tests.web.conftest import WebApi

pytestmark = pytest.mark.browser


def _graph(name: str) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": name,
        "nodes": [{"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}}],
        "edges": [],
    }


async def test_offer_a_workflow_as_an_mcp_tool(sign_in: Any, web_api: WebApi) -> None:
    tag = uuid.uuid4().hex[:6]
    headers = {"Authorization": f"Bearer {web_api.users['admin'].api_key}"}
    async with httpx.AsyncClient(base_url=web_api.url + "/api/v1", headers=headers, timeout=60) as api:
        created = await api.post("/workflows", json={"name": f"Lookup {tag}", "graph": _graph(f"Lookup {tag}")})
        assert created.status_code == 201, created.text
        wid = created.json()["id"]
        published = await api.post(f"/workflows/{wid}/publish", json={"message": "v1"})
        assert published.status_code == 201, published.text

        session = await sign_in("editor")
        page = session.page
        await page.goto(f"{web_api.url}/workflows/{wid}")
        toggle = page.get_by_label("Offer as an MCP tool")
        await page.locator("#wf-mcp-enabled:not(:checked):enabled").wait_for()
        # The box shows what the API stored: it turns on once the change is saved.
        await toggle.click()
        await page.get_by_role("status").filter(has_text=f'the tool "lookup_{tag}" at /mcp').wait_for()
        assert await toggle.is_checked()
        assert (await api.get(f"/workflows/{wid}/mcp-tool")).json()["enabled"] is True

        await page.get_by_label("Tool name").fill(f"find_{tag}")
        await page.get_by_label("Tool description").fill("Looks a thing up.")
        await page.get_by_role("button", name="Save tool").click()
        await page.get_by_role("status").filter(has_text=f'the tool "find_{tag}" at /mcp').wait_for()
        stored = (await api.get(f"/workflows/{wid}/mcp-tool")).json()
        assert (stored["name"], stored["description"]) == (f"find_{tag}", "Looks a thing up.")
        async with mcp_session(web_api.url, web_api.users["viewer"].api_key) as mcp:
            tools = {t.name: t for t in (await mcp.list_tools()).tools}
        assert tools[f"find_{tag}"].description == "Looks a thing up."

        # A bad name is refused with the field named, and nothing changes.
        await page.get_by_label("Tool name").fill("has spaces")
        await page.get_by_role("button", name="Save tool").click()
        await page.get_by_text("mcp_tool.name").first.wait_for()
        assert (await api.get(f"/workflows/{wid}/mcp-tool")).json()["name"] == f"find_{tag}"
        assert session.errors == []

        viewer = await sign_in("viewer")
        await viewer.page.goto(f"{web_api.url}/workflows/{wid}")
        await viewer.page.locator("#wf-mcp-enabled:checked:disabled").wait_for()

        await toggle.click()
        for _ in range(50):
            if not (await api.get(f"/workflows/{wid}/mcp-tool")).json()["enabled"]:
                break
            await page.wait_for_timeout(200)
        assert (await api.get(f"/workflows/{wid}/mcp-tool")).json()["enabled"] is False
