"""The editor when its network goes away: the badge, unsent edits, the close warning, the resync."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import expect

from tests.web.conftest import Session, WebApi
from tests.web.link import Link

pytestmark = pytest.mark.browser

GRAPH = {"format": "gorax/graph@1", "name": "offline", "nodes": [
    {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}}], "edges": []}


def _api(web_api: WebApi) -> httpx.Client:
    return httpx.Client(base_url=web_api.url + "/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {web_api.users['admin'].api_key}"})


def _server_node_ids(web_api: WebApi, workflow_id: str) -> list[str]:
    """The node ids of the draft as the server holds it (the collaboration document)."""
    with _api(web_api) as c:
        r = c.get(f"/workflows/{workflow_id}")
        assert r.status_code == 200, r.text
        return sorted(n["id"] for n in r.json()["graph"]["nodes"])


async def _drop(page: Any, node_type: str, x: int, y: int) -> None:
    await page.get_by_test_id(f"palette-{node_type}").drag_to(
        page.get_by_test_id("canvas"), target_position={"x": x, "y": y})


async def _attempt_close(page: Any) -> list[str]:
    """Close the tab as a user would; dismiss any prompt. The types of the prompts shown."""
    shown: list[str] = []

    async def answer(dialog: Any) -> None:
        shown.append(dialog.type)
        await dialog.dismiss()

    page.on("dialog", answer)
    await page.close(run_before_unload=True)
    for _ in range(50):
        if shown or page.is_closed():
            break
        await asyncio.sleep(0.1)
    page.remove_listener("dialog", answer)
    return shown


async def test_offline_edits_show_pending_warn_on_close_and_sync_when_back(sign_in: Any, web_api: WebApi) -> None:
    with _api(web_api) as c:
        r = c.post("/workflows", json={"name": "offline", "graph": GRAPH})
        assert r.status_code == 201, r.text
        workflow_id = r.json()["id"]
    s: Session = await sign_in("editor")
    page = s.page
    badge = page.get_by_test_id("connection")
    async with Link(urlsplit(web_api.url).port or 80) as link:
        await page.goto(f"{link.url}/workflows/{workflow_id}")
        await page.get_by_test_id("node-start").wait_for()
        await expect(badge).to_have_text("connected")

        # The network goes: the open socket stays open but carries nothing.
        link.down()
        await s.context.set_offline(True)
        await _drop(page, "data.transform", 300, 300)
        await page.get_by_test_id("node-transform").wait_for()
        await expect(badge).to_have_text(re.compile(r"^offline · \d+ pending$"), timeout=5_000)
        assert int(await badge.get_attribute("data-pending") or 0) >= 1
        assert _server_node_ids(web_api, workflow_id) == ["start"]
        await s.shot("editor-offline-pending")

        # Closing the tab with unsent edits asks first; staying keeps the page and its edits.
        assert await _attempt_close(page) == ["beforeunload"]
        assert not page.is_closed()

        # The browser is online again but the server is still out of reach: it keeps retrying.
        await s.context.set_offline(False)
        await expect(badge).to_have_text(re.compile(r"^reconnecting · \d+ pending$"), timeout=5_000)
        assert _server_node_ids(web_api, workflow_id) == ["start"]

        # The server is reachable: the edit is delivered, confirmed, and the badge settles.
        link.up()
        await expect(badge).to_have_text("connected", timeout=15_000)
        assert await badge.get_attribute("data-pending") == "0"
        assert _server_node_ids(web_api, workflow_id) == ["start", "transform"]
        await page.get_by_test_id("node-transform").wait_for()

        # Nothing unsent: the tab closes without a prompt.
        assert await _attempt_close(page) == []
        assert page.is_closed()
    assert not s.errors, s.errors
