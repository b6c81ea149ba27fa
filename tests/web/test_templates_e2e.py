"""The template gallery in headless Chromium against the real API: search, category chips, the
read-only preview, and "Use this template" opening the new draft with its credentials checklist."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from api.services.templates import all_templates, search
from tests.web.conftest import Session, WebApi

pytestmark = pytest.mark.browser


async def test_search_preview_and_use(sign_in: Any, web_api: WebApi) -> None:
    with httpx.Client(
        base_url=web_api.url + "/api/v1",
        timeout=30,
        headers={"Authorization": f"Bearer {web_api.users['admin'].api_key}"},
    ) as c:
        # The tenant has the Slack credential, not the PagerDuty one.
        made = c.post("/credentials", json={"name": "slack", "type": "slack-credentials", "values": {"token": "x"}})
        assert made.status_code in (201, 409), made.text

    s: Session = await sign_in("editor")
    page = s.page
    await page.get_by_role("link", name="Templates").click()
    cards = page.locator("[data-testid^='template-']")
    await expect(cards).to_have_count(len(all_templates()))

    # A category chip narrows the cards to that category.
    await page.get_by_test_id("category-approvals").click()
    approvals = [t.id for t in all_templates() if t.meta.category == "approvals"]
    await expect(cards).to_have_count(len(approvals))
    await page.get_by_test_id(f"template-{approvals[0]}").wait_for()
    await page.get_by_test_id("category-approvals").click()  # again: every category
    await expect(cards).to_have_count(len(all_templates()))

    # Search by words of the title, description or tags.
    await page.get_by_label("Search templates").fill("health endpoint")
    assert [t.id for t in search("health endpoint")] == ["uptime-monitor"]
    await expect(cards).to_have_count(1)
    card = page.get_by_test_id("template-uptime-monitor")
    assert await card.locator(".tpl-icon").count() >= 4  # trigger, http, control, pagerduty, slack marks

    # The preview draws the graph with the editor's node component, read-only.
    await card.get_by_role("button", name="Preview").click()
    preview = page.get_by_test_id("template-preview")
    await preview.get_by_test_id("node-check").wait_for()
    for node in ("every_5_minutes", "down", "page", "post", "done"):
        assert await preview.get_by_test_id(f"node-{node}").is_visible()
    assert await preview.locator(".react-flow__edge").count() == 6
    assert await preview.locator(".react-flow__node.draggable").count() == 0
    needs = page.get_by_test_id("template-credentials")
    assert "pagerduty" in await needs.inner_text() and "slack" in await needs.inner_text()

    # Use it: the new draft opens in the editor with the checklist of what is missing.
    await page.get_by_label("Workflow name").fill("Ping the API")
    await page.get_by_role("button", name="Use this template").click()
    await page.wait_for_url("**/workflows/*")
    checklist = page.get_by_test_id("template-checklist")
    await checklist.wait_for()
    assert await page.get_by_test_id("needs-slack").get_attribute("data-present") == "true"
    assert await page.get_by_test_id("needs-pagerduty").get_attribute("data-present") == "false"
    assert await page.get_by_test_id("needs-env-SERVICE_URL").get_attribute("data-present") == "false"
    await page.get_by_test_id("connection").filter(has_text="connected").wait_for()
    await page.get_by_test_id("node-page").wait_for()
    assert await page.locator(".wf-title").inner_text() == "Ping the API"
    await s.shot("templates-used")

    workflow_id = page.url.rsplit("/", 1)[1]
    with httpx.Client(
        base_url=web_api.url + "/api/v1",
        timeout=30,
        headers={"Authorization": f"Bearer {web_api.users['admin'].api_key}"},
    ) as c:
        draft = c.get(f"/workflows/{workflow_id}").json()
    assert draft["status"] == "draft" and draft["name"] == "Ping the API"
    assert {n["id"] for n in draft["graph"]["nodes"]} == {"every_5_minutes", "check", "down", "page", "post", "done"}
    assert s.errors == []


async def test_viewers_browse_but_cannot_use(sign_in: Any, web_api: WebApi) -> None:
    s: Session = await sign_in("viewer")
    page = s.page
    await page.get_by_role("link", name="Templates").click()
    await page.get_by_test_id("template-bulk-github-issues").get_by_role("button", name="Preview").click()
    await page.get_by_test_id("template-preview").get_by_test_id("node-create").wait_for()
    assert await page.get_by_role("button", name="Use this template").count() == 0
    assert s.errors == []
