"""The Usage section of the Admin page in the browser: each quota with its bar."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client

from api.db.engine import Database
from api.services.audit import AuditContext
from api.services.quotas import set_tenant_quota
from tests.web.conftest import WebApi

pytestmark = pytest.mark.browser


async def test_an_admin_sees_each_quota_used_with_a_bar(sign_in: Any, web_api: WebApi, sqlite_url: str) -> None:
    key = web_api.users["admin"].api_key
    graph = {"format": "gorax/graph@1", "name": "stored", "nodes": [], "edges": []}
    async with httpx.AsyncClient(base_url=web_api.url, headers={"Authorization": f"Bearer {key}"}) as client:
        created = await client.post("/api/v1/workflows", json={"name": "stored", "graph": graph})
        assert created.status_code == 201, created.text

    async def set_quotas(values: dict[str, int | float | None]) -> None:
        db = Database(sqlite_url)
        try:
            async with get_client() as prefect:
                await set_tenant_quota(
                    db,
                    prefect,
                    tenant_ref=web_api.tenant_id,
                    values=values,
                    config=web_api.settings.api,
                    context=AuditContext.system("tests"),
                )
        finally:
            await db.dispose()

    await set_quotas({"runs_per_month": 250, "storage_bytes": 10, "agent_cost_usd_per_month": 25.5})
    try:
        await _check_the_usage_section(sign_in, web_api)
    finally:
        # The tenant is the session's: later tests save workflows and start runs in it.
        await set_quotas({"runs_per_month": None, "storage_bytes": None, "agent_cost_usd_per_month": None})


async def _check_the_usage_section(sign_in: Any, web_api: WebApi) -> None:
    admin = await sign_in("admin")
    page = admin.page
    await page.goto(web_api.url + "/admin")
    table = page.get_by_role("table", name="Usage")
    runs = table.get_by_test_id("quota-runs_per_month")
    await runs.wait_for()
    assert "of 250" in await runs.inner_text()
    assert "set for this tenant" in await runs.inner_text()
    meter = page.get_by_role("meter", name="Runs this month")
    assert await meter.get_attribute("aria-valuemax") == "250"
    assert (await runs.locator("td").last.inner_text()).strip()  # when the month's count resets

    # Storage is past its limit: the bar is full and marked as such.
    storage = page.get_by_role("meter", name="Storage")
    assert int(await storage.get_attribute("aria-valuenow") or 0) > 10
    full = storage.locator("div")
    assert "bar-fail" in (await full.get_attribute("class") or "")
    assert (await full.get_attribute("style") or "").startswith("width: 100%")

    # An unlimited quota (the operator's default here) says so and shows an empty bar.
    webhooks = table.get_by_test_id("quota-webhook_requests_per_minute")
    assert "of unlimited" in await webhooks.inner_text()
    # The agents' monthly budgets: a cost in dollars, tokens and tool calls unlimited here.
    cost = table.get_by_test_id("quota-agent_cost_usd_per_month")
    assert "Agent cost this month" in await cost.inner_text()
    assert "$0.00 of $25.50" in await cost.inner_text()
    assert "of unlimited" in await table.get_by_test_id("quota-agent_tokens_per_month").inner_text()
    await table.scroll_into_view_if_needed()
    await admin.shot("admin-usage")
    assert admin.errors == []
