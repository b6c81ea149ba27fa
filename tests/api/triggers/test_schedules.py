"""Schedule routes through Prefect: list, pause (queued runs dropped), resume (back), CRUD, run now."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags, FlowRunFilter, FlowRunFilterId
from prefect.server.database import provide_database_interface
from prefect.server.models.deployments import _generate_scheduled_flow_runs, _insert_scheduled_flow_runs
from prefect.server.schemas.states import Scheduled

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


async def _deployment(workflow_id: str) -> Any:
    async with get_client() as prefect:
        (deployment,) = await prefect.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[f"workflow:{workflow_id}"]))
        )
    return deployment


async def _scheduler_done(workflow_id: str) -> None:
    """Wait until Prefect's scheduler has queued the new deployment's runs and is past the window
    it looks again at a recently updated deployment in (its recent-deployments loop, 5 s, + 1 s):
    a pause during it is the race test_runs_a_schedule_queued_as_it_was_paused_... covers."""
    await eventually(lambda: _scheduled(workflow_id), timeout=120)
    updated = (await _deployment(workflow_id)).updated
    await asyncio.sleep(max(0.0, (updated + timedelta(seconds=7) - datetime.now(UTC)).total_seconds()))


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

        await _scheduler_done(workflow_id)
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


async def _collected_runs(deployment_id: Any, due: datetime) -> list[dict[str, Any]]:
    """What Prefect's scheduler collects for the deployment (its active schedules' next runs), in
    the transaction it reads in; the first is moved to ``due``."""
    db = provide_database_interface()
    async with db.session_context() as session:
        runs = await _generate_scheduled_flow_runs(
            db,
            session=session,
            deployment_id=deployment_id,
            start_time=datetime.now(UTC),
            end_time=datetime.now(UTC) + timedelta(days=3),
            min_time=timedelta(0),
            min_runs=2,
            max_runs=2,
        )
    assert len(runs) == 2, runs
    runs[0].update(
        state=Scheduled(scheduled_time=due, message="Flow run scheduled").model_dump(),
        next_scheduled_start_time=due,
        expected_start_time=due,
    )
    for run in runs:  # the scheduler's own key is taken by the run it queued before the pause
        run["idempotency_key"] = f"late {uuid.uuid4()}"
    return runs


async def _insert_late(runs: list[dict[str, Any]]) -> None:
    """Insert them in the later transaction the scheduler inserts in, as when a pause lands between."""
    db = provide_database_interface()
    async with db.session_context(begin_transaction=True) as session:
        await _insert_scheduled_flow_runs(session=session, runs=runs)


async def test_runs_a_schedule_queued_as_it_was_paused_are_dropped_or_never_run(run_tenant: TenantHandle) -> None:
    """Prefect's scheduler reads a schedule and inserts its runs in separate transactions: runs
    it inserts after a pause are dropped by the pause, and one that slips past starts Cancelled."""
    async with api_client(run_tenant) as client:
        workflow_id = await publish_new(client, _graph("0 3 * * *"))
        sid = (await client.get("/api/v1/schedules", params={"workflow_id": workflow_id})).json()["items"][0]["id"]
        deployment = await _deployment(workflow_id)
        async with get_client() as prefect:
            first, second = [await _collected_runs(deployment.id, due=datetime.now(UTC)) for _ in range(2)]
            # The pause lands in Prefect (which drops the queued runs) before the late insert.
            await prefect.update_deployment_schedule(deployment.id, uuid.UUID(sid), active=False)
            await _insert_late(first)
            assert len(await _scheduled(workflow_id)) == 2
            paused = await client.post(f"/api/v1/schedules/{sid}/pause")
            assert paused.status_code == 200 and paused.json()["active"] is False
            assert await _scheduled(workflow_id) == []

            # Inserted after the API's sweep too: the worker starts the due one, which ends at once.
            await _insert_late(second)

            async def ended() -> Any:
                run = await prefect.read_flow_run(second[0]["id"])
                return run if run.state is not None and run.state.is_final() else None

            run = await eventually(ended, timeout=120)
            assert run.state is not None and (run.state.type.value, run.state.name) == ("CANCELLED", "ScheduleOff")
            assert run.state.message == "not run: its schedule trigger-tick was paused after this run was queued"
            tasks = await prefect.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
            assert tasks == []  # no node ran
