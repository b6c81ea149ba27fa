"""A delivery whose event started no run still gets exactly one run (the dispatcher's reconcile).

Prefect takes an event before its triggers service has the automation in two real cases: just
after a restart, and right after a publish or resume (on SQLite Prefect loads a changed
automation in a task after the commit). Here the automation is paused in Prefect while the
delivery is dispatched, which reproduces the second case without timing luck.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from api.app import create_app
from api.config import ApiSettings
from api.db.engine import Database
from api.webhooks.dispatcher import idempotency_key
from tests.api.conftest import _SHARED_CONFIG, ServerThread, make_settings, new_tenant
from tests.api.triggers.conftest import (
    api_client, eventually, flow_runs, graph, hook, publish_new, webhook_urls,
)

RESEND_AFTER = 1.5


@pytest.fixture
async def quick_api(tr_pool: str, tmp_path: Any) -> Any:
    """An API on a database of its own whose dispatcher gives an event 1.5 s to start a run."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'reconcile.db'}"
    config = _SHARED_CONFIG.model_copy(update={"webhook_resend_after_seconds": RESEND_AFTER})
    assert isinstance(config, ApiSettings)
    thread = ServerThread(create_app(make_settings(url, api=config, work_pool=tr_pool))).start()
    database = Database(url)
    try:
        yield await new_tenant(database, thread.url)
    finally:
        thread.stop()
        await database.dispose()


async def _automation(tenant_id: str, workflow_id: str) -> Any:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        (automation,) = [a for a in await client.read_automations()
                         if a.description.endswith(f" open of workflow {workflow_id}")]
        return automation


async def _pause(automation_id: Any) -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        await client.pause_automation(automation_id)


async def test_a_delivery_its_event_did_not_run_is_run_once_and_waits_for_a_paused_workflow(
        quick_api: Any) -> None:
    async with api_client(quick_api) as client:
        workflow_id = await publish_new(client, graph(
            f"reconcile-{uuid.uuid4().hex[:6]}", [hook("open", {"scheme": "none"})]))
        webhook = (await webhook_urls(client, workflow_id))["open"]
        url = webhook["url"]
        automation = await _automation(quick_api.id, workflow_id)
        await _pause(automation.id)
        await asyncio.sleep(1.0)  # Prefect's triggers service takes up the change after commit

        # 1. The event reaches Prefect while no automation listens: no run from it.
        first = await client.post(url, json={"n": 1})
        assert first.status_code == 202, first.text
        first_id = first.json()["delivery_id"]

        async def status(delivery_id: str) -> dict[str, Any] | None:
            items = (await client.get(f"/api/v1/webhooks/{webhook['id']}/events")).json()["items"]
            return next((i for i in items if i["id"] == delivery_id), None)

        # 2. Paused in Gorax meanwhile: the delivery waits (no run, attempts not used up).
        assert (await client.post(f"/api/v1/workflows/{workflow_id}/pause")).status_code == 200
        await eventually(lambda: _dispatched(status, first_id), timeout=60)
        await asyncio.sleep(RESEND_AFTER * 3 + 3.5)  # past the wait, and a reconcile (3 s)
        assert await flow_runs(workflow_id) == []
        waiting = await status(first_id)
        assert waiting is not None and waiting["run_id"] is None, waiting

        # 3. Resumed (the automation too): the reconcile runs it from the deployment, once.
        assert (await client.post(f"/api/v1/workflows/{workflow_id}/resume")).status_code == 200

        async def linked() -> Any:
            found = await status(first_id)
            return found if found and found["run_id"] else None

        row = await eventually(linked, timeout=60)
        await asyncio.sleep(RESEND_AFTER * 2 + 3.5)  # more reconciles: still one run
        runs = await flow_runs(workflow_id)
        assert [str(r.id) for r in runs] == [row["run_id"]]
        (run,) = runs
        assert run.idempotency_key == idempotency_key(first_id)
        assert run.parameters["trigger"]["delivery_id"] == first_id
        assert run.parameters["trigger"]["body"] == {"n": 1}
        assert run.parameters["trigger_node"] == "open"
        assert "trigger:webhook" in run.tags

        # 4. With the automation live again, a delivery runs from its event as usual.
        assert (await _automation(quick_api.id, workflow_id)).enabled
        second = await client.post(url, json={"n": 2})
        assert second.status_code == 202, second.text

        async def two() -> list[Any]:
            found = await flow_runs(workflow_id)
            return found if len(found) >= 2 else []

        by_delivery = {r.parameters["trigger"]["delivery_id"]: r for r in
                       await eventually(two, timeout=60)}
        assert set(by_delivery) == {first_id, second.json()["delivery_id"]}
        assert by_delivery[second.json()["delivery_id"]].idempotency_key != idempotency_key(
            second.json()["delivery_id"])  # the automation's run, not a direct one


async def _dispatched(status: Any, delivery_id: str) -> bool:
    found = await status(delivery_id)
    return bool(found and found["status"] == "dispatched")
