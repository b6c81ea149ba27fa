"""A third-party plugin's node types work end to end, added through the entry point alone.

``tests/plugin`` (installed by ``make test``) registers ``acme.route``, whose outputs are its
config's lanes, and ``acme.tick``, a trigger with an interval schedule. No Gorax file names them:
the catalogue, the editor's handles, deploy (the schedule) and a run all come from the contract.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client

from flows.published import published_deployment
from tests.web.conftest import Session, WebApi

pytestmark = pytest.mark.browser

GRAPH = {
    "format": "gorax/graph@1",
    "name": "lanes",
    "nodes": [
        {"id": "tick", "type": "acme.tick", "position": {"x": 0, "y": 0}, "config": {"every_minutes": 10}},
        {"id": "route", "type": "acme.route", "position": {"x": 0, "y": 200},
         "config": {"lanes": ["fast", "slow"], "pick": "{{ trigger.lane }}"}},
        {"id": "went_fast", "type": "data.transform", "position": {"x": -200, "y": 400},
         "config": {"value": "fast at {{ trigger.ticked_at }}"}},
        {"id": "went_slow", "type": "data.transform", "position": {"x": 200, "y": 400},
         "config": {"value": "slow"}},
    ],
    "edges": [
        {"id": "e1", "source": "tick", "target": "route"},
        {"id": "e2", "source": "route", "sourceHandle": "fast", "target": "went_fast"},
        {"id": "e3", "source": "route", "sourceHandle": "slow", "target": "went_slow"},
    ],
}


async def test_plugin_types_in_catalogue_editor_deploy_and_run(sign_in: Any, web_api: WebApi,
                                                               web_worker: Any) -> None:
    headers = {"Authorization": f"Bearer {web_api.users['admin'].api_key}"}
    async with httpx.AsyncClient(base_url=web_api.url + "/api/v1", headers=headers, timeout=60) as api:
        catalogue = {e["type"]: e for e in (await api.get("/node-types")).json()}
        assert catalogue["acme.route"]["handles_from"] == "lanes.*"
        assert catalogue["acme.route"]["outputs"] == ["other"]
        assert catalogue["acme.tick"]["is_trigger"] is True

        created = await api.post("/workflows", json={"name": "lanes", "graph": GRAPH})
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]

        # The editor draws the router's handles from its config, through the catalogue.
        s: Session = await sign_in("editor")
        await s.page.goto(f"{web_api.url}/workflows/{workflow_id}")
        node = s.page.get_by_test_id("node-route")
        await node.wait_for()
        for handle in ("fast", "slow", "other"):
            await node.locator(f'[data-handle="{handle}"]').wait_for()
        assert await node.locator("[data-handle]").count() == 3
        assert await s.page.get_by_test_id("node-tick").locator(".react-flow__handle.target").count() == 0
        assert not s.errors, s.errors

        published = await api.post(f"/workflows/{workflow_id}/publish", json={"message": "v1"})
        assert published.status_code == 201, published.text

    deployment_id = await published_deployment(web_api.tenant_id, workflow_id)
    async with get_client() as client:
        schedules = await client.read_deployment_schedules(deployment_id)
        assert [(s.slug, s.schedule.interval.total_seconds()) for s in schedules] == [("trigger-tick", 600.0)]
        # The run a schedule makes: the tick trigger fired.
        run = await client.create_flow_run_from_deployment(deployment_id,
                                                           parameters={"trigger_node": "tick"})
        for _ in range(240):
            run = await client.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                break
            await asyncio.sleep(0.5)
        assert run.state is not None and run.state.is_completed(), run.state
        result = await run.state.result()
    # The last nodes' outputs, of those that ran: the slow lane was skipped.
    assert list(result) == ["went_fast"] and result["went_fast"].startswith("fast at ")
