"""Schedule routes through Prefect: list, pause (queued runs dropped), resume (back), CRUD, run now."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.api.conftest import TenantHandle
from tests.api.triggers.conftest import api_client, eventually, flow_runs, publish_new

pytestmark = pytest.mark.timeout(900)  # deploys on a loaded machine
ZONE = "Asia/Kolkata"  # UTC+05:30: a wrong timezone would be off by hours and a half


def _graph(cron: str) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": f"cron-{uuid.uuid4().hex[:6]}",
        "nodes": [
            {
                "id": "tick",
                "type": "trigger.schedule",
                "position": {"x": 0, "y": 0},
                "config": {"cron": cron, "timezone": ZONE},
            },
            {
                "id": "out",
                "type": "control.output",
                "position": {"x": 0, "y": 100},
                "config": {"value": "{{ trigger }}"},
            },
        ],
        "edges": [{"id": "e1", "source": "tick", "target": "out"}],
    }


async def _scheduled(workflow_id: str) -> list[Any]:
    return [r for r in await flow_runs(workflow_id) if r.state and r.state.type.value == "SCHEDULED"]


async def test_cron_in_timezone_pause_resume_crud_and_trigger(tr_tenant: TenantHandle) -> None:
    local = datetime.now(ZoneInfo(ZONE)) + timedelta(minutes=2)
    target = local.replace(second=0, microsecond=0)
    cron = f"{target.minute} {target.hour} * * *"
    async with api_client(tr_tenant) as client:
        workflow_id = await publish_new(client, _graph(cron))
        listed = (await client.get("/api/v1/schedules", params={"workflow_id": workflow_id})).json()
        assert len(listed["items"]) == 1
        schedule = listed["items"][0]
        assert (schedule["cron"], schedule["timezone"], schedule["node_id"], schedule["active"]) == (
            cron,
            ZONE,
            "tick",
            True,
        )
        sid = schedule["id"]

        paused = await client.post(f"/api/v1/schedules/{sid}/pause")
        assert paused.status_code == 200 and paused.json()["active"] is False
        assert await _scheduled(workflow_id) == []
        resumed = await client.post(f"/api/v1/schedules/{sid}/resume")
        assert resumed.status_code == 200 and resumed.json()["active"] is True
        runs = await eventually(lambda: _scheduled(workflow_id), timeout=120)
        first = min(r.expected_start_time for r in runs)
        assert first == target.astimezone(UTC), (first, target)
        detail = (await client.get(f"/api/v1/schedules/{sid}")).json()
        assert detail["next_runs"] and datetime.fromisoformat(
            detail["next_runs"][0].replace("Z", "+00:00")
        ) == target.astimezone(UTC)

        now = await client.post(f"/api/v1/schedules/{sid}/trigger")
        assert now.status_code == 202, now.text
        manual = [r for r in await flow_runs(workflow_id) if str(r.id) == now.json()["execution_id"]]
        assert manual and manual[0].parameters["trigger_node"] == "tick"
        assert "trigger:schedule" in manual[0].tags

        created = await client.post(
            "/api/v1/schedules", json={"workflow_id": workflow_id, "interval_seconds": 3600, "node_id": "tick"}
        )
        assert created.status_code == 201, created.text
        extra = created.json()["id"]
        bad = await client.put(f"/api/v1/schedules/{extra}", json={"cron": "61 * * * *"})
        assert bad.status_code in (400, 422)
        changed = await client.put(f"/api/v1/schedules/{extra}", json={"cron": "0 9 * * 1", "timezone": "Europe/Paris"})
        assert changed.status_code == 200 and changed.json()["cron"] == "0 9 * * 1"
        assert changed.json()["timezone"] == "Europe/Paris"
        assert (await client.delete(f"/api/v1/schedules/{extra}")).status_code == 204
        assert (await client.get(f"/api/v1/schedules/{extra}")).status_code == 404
        viewer = await client.post(
            f"/api/v1/schedules/{sid}/pause", headers={"Authorization": f"Bearer {tr_tenant.keys['viewer']}"}
        )
        assert viewer.status_code == 403
