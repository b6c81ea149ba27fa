"""The Operations page in headless Chromium against the real API and Prefect: the charts draw the
seeded runs (lines per minute, p50/p95 bars per workflow), the queue table and intake chart are
there, and an admin's SLO form saves an objective that then shows as an error budget gauge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from prefect.client.orchestration import get_client

from tests.api.ops_seed import seed_runs
from tests.web.conftest import Session, WebApi

pytestmark = pytest.mark.browser

GRAPH_NODES = [
    {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}},
    {"id": "t", "type": "data.transform", "position": {"x": 0, "y": 100}, "config": {"value": 1}},
]


def _workflow(c: httpx.Client, name: str) -> str:
    g = {
        "format": "gorax/graph@1",
        "name": name,
        "nodes": GRAPH_NODES,
        "edges": [{"id": "e0", "source": "start", "target": "t"}],
    }
    made = c.post("/workflows", json={"name": name, "graph": g})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_operations_page_draws_charts_and_saves_an_slo(sign_in: Any, web_api: WebApi) -> None:
    headers = {"Authorization": f"Bearer {web_api.users['admin'].api_key}"}
    with httpx.Client(base_url=web_api.url + "/api/v1", timeout=30, headers=headers) as c:
        fast, slow = _workflow(c, "ops-web-fast"), _workflow(c, "ops-web-slow")
        before = c.get("/ops/dashboard").json()
    started = datetime.now(UTC) - timedelta(minutes=3)
    async with get_client() as prefect:
        await seed_runs(prefect, web_api.tenant_id, fast, [(True, 1.0), (True, 2.0), (False, 3.0)], started)
        await seed_runs(prefect, web_api.tenant_id, slow, [(True, 20.0), (True, 40.0)], started)

    s: Session = await sign_in("admin")
    page = s.page
    await page.get_by_role("link", name="Operations").click()
    await page.get_by_role("heading", name="Operations").wait_for()

    runs = page.get_by_role("img", name="Runs per minute")
    await runs.wait_for()
    assert await runs.locator("g.series").count() == 2
    total = runs.locator("g.series[data-series='All runs']")
    assert int(await total.get_attribute("data-sum") or 0) == before["runs_last_hour"] + 5
    assert int(await runs.locator("g.series[data-series='Failed']").get_attribute("data-sum") or 0) >= 1
    assert await total.locator("polyline").count() == 1 and await total.locator("path.area").count() == 1

    bars = page.get_by_role("img", name="Duration per workflow (p50, p95)")
    for name, p95 in (("ops-web-fast", "3.0 s"), ("ops-web-slow", "40.0 s")):
        row = bars.locator(f"g[data-workflow='{name}']")
        assert await row.locator("rect").count() == 2
        label = await row.text_content() or ""
        assert name in label and p95 in label
    slow_row = bars.locator("g[data-workflow='ops-web-slow'] rect.bar-p95")
    fast_row = bars.locator("g[data-workflow='ops-web-fast'] rect.bar-p95")
    assert float(await slow_row.get_attribute("width") or 0) > float(await fast_row.get_attribute("width") or 0)

    intake = page.get_by_role("img", name="Webhook intake per minute")
    assert await intake.locator("g.series").count() == 3
    queues = page.get_by_role("table", name="Work queues")
    assert web_api.settings.work_pool in await queues.inner_text()
    await expect(page.get_by_text("No workflow has an SLO yet.")).to_be_visible()

    # The admin sets an SLO: 90% over 7 days; the gauge shows the budget of the fast workflow.
    form = page.get_by_role("form", name="Set an SLO")
    await form.get_by_label("Workflow").select_option(label="ops-web-fast")
    await form.get_by_label("Target success rate (%)").fill("90")
    await form.get_by_label("Window (days)").fill("7")
    await form.get_by_role("button", name="Save SLO").click()
    await expect(form.get_by_role("status")).to_have_text("SLO of ops-web-fast saved.")
    gauges = page.get_by_role("img", name="Error budget remaining")
    gauge = gauges.locator("g[data-workflow='ops-web-fast']")
    await gauge.wait_for()
    # 3 runs, 1 failed, 0.3 failures allowed: overspent.
    assert await gauge.get_attribute("data-state") == "exhausted"
    assert await gauge.locator("rect").count() == 2
    await s.shot("operations")
    assert s.errors == []

    with httpx.Client(base_url=web_api.url + "/api/v1", timeout=30, headers=headers) as c:
        budgets = c.get("/ops/dashboard").json()["error_budgets"]
    [budget] = [b for b in budgets if b["workflow_id"] == fast]
    assert (budget["target"], budget["window_days"], budget["runs"], budget["failed"]) == (0.9, 7, 3, 1)

    viewer = await sign_in("viewer")
    await viewer.page.get_by_role("link", name="Operations").click()
    await viewer.page.get_by_role("img", name="Error budget remaining").wait_for()
    assert await viewer.page.get_by_role("form", name="Set an SLO").count() == 0
