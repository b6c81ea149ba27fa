"""The Alerts page in the browser: add a burst rule for one workflow, send a test alert to an HTTP
peer and see it in the history, edit the rule (its Prefect automation changes); the
error-workflow picker in the workflow's settings."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client

from tests.peers import HttpPeer
from tests.web.conftest import WebApi

pytestmark = pytest.mark.browser


def _graph(name: str) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": name,
        "nodes": [{"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}}],
        "edges": [],
    }


async def _automations(name: str) -> list[Any]:
    async with get_client() as client:
        return list(await client.read_automations_by_name(name))


async def test_add_a_rule_send_a_test_alert_and_pick_an_error_workflow(
    sign_in: Any, web_api: WebApi, http_peer: HttpPeer
) -> None:
    tag = uuid.uuid4().hex[:6]
    headers = {"Authorization": f"Bearer {web_api.users['admin'].api_key}"}
    async with httpx.AsyncClient(base_url=web_api.url + "/api/v1", headers=headers, timeout=60) as api:
        ids = {}
        for name in (f"orders-{tag}", f"on-error-{tag}"):
            response = await api.post("/workflows", json={"name": name, "graph": _graph(name)})
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]

        session = await sign_in("admin")
        page = session.page
        await page.get_by_role("link", name="Alerts").click()
        await page.get_by_role("button", name="New rule").click()
        form = page.get_by_role("form", name="New alert rule")
        await form.get_by_label("Name").fill(f"orders burst {tag}")
        await form.get_by_label("When").select_option("failure_burst")
        await form.get_by_label("Failures (N)").fill("4")
        await form.get_by_label("Within minutes (M)").fill("10")
        await form.get_by_label("Workflows").select_option(label=f"orders-{tag}")
        await form.get_by_label("Webhook URL").fill(f"{http_peer.url}/alerts")
        await form.get_by_role("button", name="Save rule").click()

        rules = page.get_by_role("table", name="Alert rules")
        row = rules.get_by_role("row").filter(has_text=f"orders burst {tag}")
        await row.get_by_text("4 failures in 10 min").wait_for()
        assert f"orders-{tag}" in await row.inner_text()
        await row.get_by_role("button", name="Send test").click()
        history = page.get_by_role("table", name="Alert history")
        await history.get_by_text(f"[Gorax test alert] orders burst {tag}").wait_for()
        [received] = http_peer.received("POST", "/alerts")
        assert received.json()["rule"]["kind"] == "failure_burst"
        rules_now = (await api.get("/alert-rules")).json()["items"]
        assert [(r["threshold"], r["window_minutes"], r["workflow_id"]) for r in rules_now if tag in r["name"]] == [
            (4, 10, ids[f"orders-{tag}"])
        ]
        [rule_id] = [r["id"] for r in rules_now if tag in r["name"]]
        [automation] = await _automations(f"gorax-alert-{rule_id}")
        assert (automation.trigger.threshold, automation.trigger.within) == (4, timedelta(minutes=10))

        # Edit: the form opens filled with the rule; saving replaces it and its Prefect automation.
        await row.get_by_role("button", name="Edit").click()
        edit = page.get_by_role("form", name="Edit alert rule")
        assert await edit.get_by_label("Name").input_value() == f"orders burst {tag}"
        assert await edit.get_by_label("Failures (N)").input_value() == "4"
        assert await edit.get_by_label("Webhook URL").input_value() == f"{http_peer.url}/alerts"
        await edit.get_by_label("When").select_option("webhook_failures")
        await edit.get_by_label("Failed deliveries (N)").fill("6")
        await edit.get_by_label("Within minutes (M)").fill("20")
        await edit.get_by_label("Enabled").uncheck()
        await edit.get_by_role("button", name="Save rule").click()
        await (
            rules.get_by_role("row")
            .filter(has_text=f"orders burst {tag}")
            .get_by_text("6 failed webhook deliveries in 20 min")
            .wait_for()
        )
        await edit.wait_for(state="detached")
        edited = (await api.get(f"/alert-rules/{rule_id}")).json()
        assert (edited["kind"], edited["threshold"], edited["window_minutes"], edited["enabled"]) == (
            "webhook_failures",
            6,
            20,
            False,
        )
        assert edited["workflow_id"] == ids[f"orders-{tag}"]
        [automation] = await _automations(f"gorax-alert-{rule_id}")
        assert automation.trigger.expect == {"gorax.webhook.delivery.failed"}
        assert (automation.trigger.threshold, automation.trigger.within) == (6, timedelta(minutes=20))
        assert automation.enabled is False

        # The workflow's settings: on failure run the other workflow.
        await page.goto(f"{web_api.url}/workflows/{ids[f'orders-{tag}']}")
        picker = page.get_by_label("On failure run workflow")
        await picker.select_option(label=f"on-error-{tag}")
        for _ in range(50):
            current = (await api.get(f"/workflows/{ids[f'orders-{tag}']}/error-workflow")).json()
            if current["on_failure_workflow_id"]:
                break
            await page.wait_for_timeout(200)
        assert current["on_failure_workflow_id"] == ids[f"on-error-{tag}"]
        assert session.errors == []
