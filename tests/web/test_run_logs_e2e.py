"""The run page's Logs panel in headless Chromium: lines appear while the run goes, then the
level filter and the search box narrow them (against the real API, Prefect server and worker)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.peers import PeerResponse
from tests.web.conftest import Session, WebApi

pytestmark = pytest.mark.browser


def _api(web_api: WebApi) -> httpx.Client:
    return httpx.Client(
        base_url=web_api.url + "/api/v1",
        timeout=30,
        headers={"Authorization": f"Bearer {web_api.users['admin'].api_key}"},
    )


def _publish_chatty(web_api: WebApi, http_peer: Any) -> str:
    """A published workflow that logs, naps six seconds, then logs a refused call as an error."""
    http_peer.route("POST", "/refuse", PeerResponse(400, {"error": "refused by peer"}))
    node = {"position": {"x": 0, "y": 0}}
    graph = {
        "format": "gorax/graph@1",
        "name": f"chatty-{uuid.uuid4().hex[:6]}",
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {}, **node},
            {"id": "hello", "type": "data.transform", "config": {"value": 1}, **node},
            {"id": "nap", "type": "control.delay", "config": {"seconds": 6}, **node},
            {
                "id": "refuse",
                "type": "http.request",
                "config": {"method": "POST", "url": f"{http_peer.url}/refuse"},
                "on_error": "continue",
                **node,
            },
        ],
        "edges": [
            {"source": "start", "target": "hello"},
            {"source": "hello", "target": "nap"},
            {"source": "nap", "target": "refuse"},
        ],
    }
    with _api(web_api) as c:
        created = c.post("/workflows", json={"name": graph["name"], "graph": graph})
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        assert c.post(f"/workflows/{workflow_id}/publish", json={"message": "v1"}).status_code == 201
    return str(workflow_id)


async def test_run_page_shows_logs_live_with_level_filter_and_search(
    sign_in: Any, web_api: WebApi, web_worker: Any, http_peer: Any
) -> None:
    workflow_id = _publish_chatty(web_api, http_peer)
    with _api(web_api) as c:
        started = c.post(f"/workflows/{workflow_id}/execute", json={"input": {}})
        assert started.status_code == 202, started.text
        execution_id = started.json()["execution_id"]

    s: Session = await sign_in("viewer")
    await s.page.goto(f"{web_api.url}/runs/{execution_id}")
    logs = s.page.get_by_test_id("run-logs")
    lines = logs.locator(".log-line")
    # A node's line shows up while the run is still going (it naps for six seconds after).
    await logs.locator('.log-line[data-node="hello"]').first.wait_for(timeout=60_000)
    with _api(web_api) as c:
        assert c.get(f"/executions/{execution_id}").json()["status"] in ("pending", "running")
    assert await logs.get_attribute("data-state") == "live"
    await s.page.wait_for_selector('[data-testid="run-logs"][data-state="ended"]', timeout=90_000)
    assert await logs.locator('.log-line[data-node="refuse"][data-level="error"]').count() >= 1
    total = await lines.count()
    assert total >= 5

    await logs.get_by_label("Log level").select_option("error")
    await s.page.wait_for_selector('[data-testid="run-logs"][data-state="ended"]')
    await logs.locator(".log-line").first.wait_for()
    levels = {await lines.nth(i).get_attribute("data-level") for i in range(await lines.count())}
    assert levels == {"error"}, levels
    assert await lines.count() < total

    await logs.get_by_label("Log level").select_option("")
    await logs.get_by_label("Search logs").fill("refused by peer")
    await s.page.wait_for_function(
        "() => { const ls = document.querySelectorAll('[data-testid=run-logs] .log-line');"
        " return ls.length > 0 && [...ls].every(l => l.textContent.includes('refused by peer')); }",
        timeout=20_000,
    )
    await s.page.wait_for_selector('[data-testid="run-logs"][data-state="ended"]')
    assert 0 < await lines.count() < total
    assert not s.errors, s.errors


async def test_editor_live_run_shows_a_logs_panel(
    sign_in: Any, web_api: WebApi, web_worker: Any, http_peer: Any
) -> None:
    workflow_id = _publish_chatty(web_api, http_peer)
    s: Session = await sign_in("editor")
    page = s.page
    await page.goto(f"{web_api.url}/workflows/{workflow_id}")
    await page.get_by_role("toolbar").get_by_role("button", name="Run", exact=True).click()
    await page.get_by_role("dialog").get_by_role("button", name="Run").click()
    panel = page.get_by_label("Run logs panel")
    await panel.locator('.log-line[data-node="hello"]').first.wait_for(timeout=60_000)
    assert await page.get_by_test_id("run-banner").get_attribute("data-status") == "running"
    await page.wait_for_selector(
        '[aria-label="Run logs panel"] [data-testid="run-logs"][data-state="ended"]', timeout=90_000
    )
    await panel.locator('.log-line[data-node="refuse"][data-level="error"]').first.wait_for()
    # A node badge narrows the panel to that node's lines.
    await panel.locator('.log-line[data-node="refuse"] .node-badge').first.click()
    await page.wait_for_function(
        "() => { const ls = document.querySelectorAll('[aria-label=\"Run logs panel\"] .log-line');"
        " return ls.length > 0 && [...ls].every(l => l.dataset.node === 'refuse'); }",
        timeout=20_000,
    )
    await s.shot("editor-run-logs")
    assert not s.errors, s.errors
