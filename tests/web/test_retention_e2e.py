"""The Retention section of the Admin page: an admin changes the tenant's policy within the
operator's bounds, runs the job now and reads its report."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.web.conftest import WebApi

pytestmark = pytest.mark.browser


async def test_admin_sets_retention_and_runs_it_now(sign_in: Any, web_api: WebApi) -> None:
    admin = await sign_in("admin")
    page = admin.page
    key = web_api.users["admin"].api_key
    try:
        await page.goto(web_api.url + "/admin")
        form = page.get_by_role("form", name="Retention policy")
        days = form.get_by_label("Executions (days)")
        assert await days.get_attribute("max") == "365"
        assert await days.get_attribute("placeholder") == "default 30"
        await days.fill("200")
        await form.get_by_label("Audit log (days)").fill("3650")
        await form.get_by_role("button", name="Save retention").click()
        await form.get_by_text("applies: 200").wait_for()
        async with httpx.AsyncClient(base_url=web_api.url, headers={"Authorization": f"Bearer {key}"}) as api:
            policy = (await api.get("/api/v1/retention/policy")).json()
        assert policy["execution_days"]["chosen"] == 200 and policy["audit_days"]["value"] == 3650

        await form.get_by_role("button", name="Run now").click()
        table = page.get_by_role("table", name="Retention runs")
        await table.get_by_role("cell", name="manual").first.wait_for()
        assert await table.get_by_role("cell", name="completed").count() >= 1
    finally:
        async with httpx.AsyncClient(base_url=web_api.url, headers={"Authorization": f"Bearer {key}"}) as api:
            await api.put("/api/v1/retention/policy", json={"execution_days": None, "audit_days": None})
    assert admin.errors == []
