"""Retention: old executions (flow runs, logs, artifacts), step data, webhook deliveries and audit
events go in bounded batches, recent ones and other tenants' stay, and the audit chain still
verifies (and still catches tampering) after pruning. Real PostgreSQL/SQLite and Prefect server."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate, LogCreate
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
from prefect.states import Completed, Running, Scheduled
from sqlalchemy.ext.asyncio import create_async_engine

from api.db.engine import Database
from api.models.workflows import Workflow
from api.services import retention
from api.webhooks.models import Webhook, WebhookDelivery
from flows import (
    STEP_ARTIFACT_TYPE,
    TEST_TAG,
    read_steps,
    tenant_tag,
    tenant_test_tag,
    workflow_tag,
    workflow_test_tag,
)
from tests.api.conftest import ApiServer, TenantHandle, api_settings

pytestmark = pytest.mark.timeout(300)

NOW = datetime.now(UTC)


@flow(name="gorax-retention-test")
def _stand_in() -> None:
    """Never runs: its flow runs stand in for a workflow's executions."""


def _config(**fields: Any) -> Any:
    return api_settings(retention_batch_size=2, retention_batch_pause_seconds=0, **fields)


async def _workflow(db: Database, tenant_id: str) -> str:
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        wf = Workflow(tenant_id=tenant_id, name=f"wf-{uuid.uuid4().hex[:6]}", graph={})
        session.add(wf)
        await session.commit()
        return wf.id


async def _run(
    client: Any, tenant_id: str, workflow_id: str, age_days: float, *, final: bool = True, test: bool = False
) -> Any:
    tags = [tenant_tag(tenant_id), workflow_tag(workflow_id)]
    if test:  # the editor's test run of a draft
        tags = [TEST_TAG, tenant_test_tag(tenant_id), workflow_test_tag(workflow_id)]
    run = await client.create_flow_run(
        _stand_in,
        tags=tags,
        state=Scheduled(scheduled_time=NOW - timedelta(days=age_days)),
    )
    await client.set_flow_run_state(run.id, Completed() if final else Running(), force=True)
    return run


async def _keep_two_per_workflow(tenant: TenantHandle, db: Database, client: Any) -> Any:
    """Set the tenant's policy to keep 2 runs per workflow, then run its pruning; the report."""
    async with tenant.client() as admin:
        put = await admin.put("/api/v1/retention/policy", json={"executions_per_workflow": 2})
        assert put.status_code == 200, put.text
    return await retention.run_tenant(db, client, _config(), tenant_id=tenant.id, trigger="manual")


async def _exists(client: Any, run_id: Any) -> bool:
    try:
        await client.read_flow_run(run_id)
        return True
    except Exception:
        return False


async def test_policy_bounds_and_access(tenant: TenantHandle) -> None:
    async with tenant.client() as admin:
        got = (await admin.get("/api/v1/retention/policy")).json()
        assert got["execution_days"] == {"value": 30, "chosen": None, "default": 30, "minimum": 1, "maximum": 365}
        assert got["audit_days"]["minimum"] == 365 and got["audit_days"]["maximum"] is None
        too_long = await admin.put("/api/v1/retention/policy", json={"execution_days": 400})
        assert too_long.status_code == 400
        assert too_long.json()["error"]["details"]["field"] == "execution_days"
        too_short = await admin.put("/api/v1/retention/policy", json={"audit_days": 30})
        assert too_short.status_code == 400 and too_short.json()["error"]["details"]["field"] == "audit_days"
        unknown = await admin.put("/api/v1/retention/policy", json={"logs_days": 3})
        assert unknown.status_code in (400, 422)
        put = await admin.put("/api/v1/retention/policy", json={"execution_days": 3, "audit_days": 3650})
        assert put.status_code == 200, put.text
        assert put.json()["execution_days"]["value"] == 3 and put.json()["audit_days"]["value"] == 3650
        back = await admin.put("/api/v1/retention/policy", json={"execution_days": None})
        assert back.json()["execution_days"]["value"] == 30 and back.json()["audit_days"]["chosen"] == 3650
        events = (await admin.get("/api/v1/audit", params={"action": "retention.policy_update"})).json()["items"]
        assert events[0]["before"]["execution_days"] == 3 and events[0]["after"]["execution_days"] is None
    async with tenant.client(role="viewer") as viewer:  # type: ignore[arg-type]
        assert (await viewer.get("/api/v1/retention/policy")).status_code == 403
        assert (await viewer.post("/api/v1/retention/runs")).status_code == 403


async def test_old_executions_logs_step_data_go_in_batches(
    tenant: TenantHandle, other_tenant: TenantHandle, db: Database, prefect_server: Any
) -> None:
    wf, wf2 = await _workflow(db, tenant.id), await _workflow(db, tenant.id)
    theirs = await _workflow(db, other_tenant.id)
    async with get_client() as client:
        old = [await _run(client, tenant.id, wf, 40 + i) for i in range(3)]
        running_old = await _run(client, tenant.id, wf, 50, final=False)
        recent = [await _run(client, tenant.id, wf, d) for d in (4, 3, 2, 1)]
        stepped = await _run(client, tenant.id, wf2, 10)
        fresh_steps = await _run(client, tenant.id, wf2, 1)
        other_old = await _run(client, other_tenant.id, theirs, 60)
        await client.create_logs(
            [
                LogCreate(name="gorax.run", level=20, message="old run line", timestamp=NOW, flow_run_id=old[0].id),
                LogCreate(name="gorax.run", level=20, message="kept line", timestamp=NOW, flow_run_id=recent[-1].id),
            ]
        )
        for run in (stepped, fresh_steps, old[1]):
            step = {
                "node_id": "t",
                "name": "t",
                "type": "transform",
                "status": "completed",
                "input": {"secret-ish": "in"},
                "output": {"value": "out"},
                "error": None,
            }
            await client.create_artifact(
                ArtifactCreate(type=STEP_ARTIFACT_TYPE, data={"steps": [step]}, flow_run_id=run.id)
            )

        report = await _keep_two_per_workflow(tenant, db, client)

        assert report.status == "completed", report.error
        # 3 old by age, then wf keeps its newest 2 finished runs (2 of the 4 recent go).
        assert report.deleted["executions"] == 5
        assert report.deleted["step_records"] == 1
        assert report.batches >= 3  # batch size 2: 3 old runs need two batches, 2 excess one more
        assert not any([await _exists(client, r.id) for r in old])
        assert not await _exists(client, recent[0].id) and not await _exists(client, recent[1].id)
        assert await _exists(client, recent[2].id) and await _exists(client, recent[3].id)
        assert await _exists(client, running_old.id)  # never a run that has not finished
        assert await _exists(client, other_old.id)  # another tenant's run
        # Prefect deletes a deleted run's logs in the background.
        for _ in range(100):
            gone = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[old[0].id])))
            if not gone:
                break
            await asyncio.sleep(0.1)
        assert gone == []
        kept = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[recent[-1].id])))
        assert [log.message for log in kept] == ["kept line"]
        # The deleted run's artifacts went with it; the 10-day-old run lost its step data, not its steps.
        orphans = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[old[1].id]))
        )
        assert orphans == []
        steps = await read_steps(stepped.id, client=client)
        assert [(s.node_id, s.status, s.input, s.output) for s in steps] == [("t", "completed", None, None)]
        fresh = await read_steps(fresh_steps.id, client=client)
        assert fresh[0].output == {"value": "out"}

        # Idempotent: a second run finds nothing more.
        again = await retention.run_tenant(db, client, _config(), tenant_id=tenant.id, trigger="manual")
        assert again.deleted == dict.fromkeys(retention.COUNTERS, 0)

    async with tenant.client() as admin:
        runs = (await admin.get("/api/v1/retention/runs")).json()
        assert runs[0]["deleted"]["executions"] == 0 and runs[1]["deleted"]["executions"] == 5
        pruned = (await admin.get("/api/v1/audit", params={"action": "retention.pruned"})).json()["items"]
        assert pruned[-1]["details"]["deleted"]["executions"] == 5


async def test_test_runs_go_by_age_and_by_count_apart_from_production_runs(
    tenant: TenantHandle, other_tenant: TenantHandle, db: Database, prefect_server: Any
) -> None:
    wf, theirs = await _workflow(db, tenant.id), await _workflow(db, other_tenant.id)
    async with get_client() as client:
        production = [await _run(client, tenant.id, wf, d) for d in (2, 1)]
        old_test = await _run(client, tenant.id, wf, 40, test=True)
        tests = [await _run(client, tenant.id, wf, d, test=True) for d in (3, 2, 1)]
        their_old_test = await _run(client, other_tenant.id, theirs, 40, test=True)
        report = await _keep_two_per_workflow(tenant, db, client)
        assert report.status == "completed", report.error
        # The old test run by age, then the oldest of the three recent ones (2 kept); the two
        # production runs are counted apart and stay.
        assert report.deleted["executions"] == 2
        assert not await _exists(client, old_test.id) and not await _exists(client, tests[0].id)
        assert all([await _exists(client, r.id) for r in (*tests[1:], *production)])
        assert await _exists(client, their_old_test.id)


async def _deliveries(db: Database, tenant_id: str, workflow_id: str, ages: list[tuple[float, str]]) -> str:
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        hook = Webhook(
            tenant_id=tenant_id, workflow_id=workflow_id, node_id="hook", token=secrets.token_hex(16), config={}
        )
        session.add(hook)
        await session.flush()
        for age, status in ages:
            session.add(
                WebhookDelivery(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant_id,
                    webhook_id=hook.id,
                    workflow_id=workflow_id,
                    node_id="hook",
                    status=status,
                    method="POST",
                    headers={},
                    query={},
                    body=b"{}",
                    received_at=NOW - timedelta(days=age),
                )
            )
        await session.commit()
        return hook.id


async def _delivery_ages(db: Database, tenant_id: str) -> list[int]:
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        rows = (
            await session.execute(sa.select(WebhookDelivery.received_at).where(WebhookDelivery.tenant_id == tenant_id))
        ).scalars()
        return sorted(round((NOW - r).total_seconds() / 86400) for r in rows)


async def test_webhook_deliveries_by_age_and_count(
    tenant: TenantHandle, other_tenant: TenantHandle, db: Database, prefect_server: Any
) -> None:
    wf, theirs = await _workflow(db, tenant.id), await _workflow(db, other_tenant.id)
    await _deliveries(
        db,
        tenant.id,
        wf,
        [
            (20, "dispatched"),
            (21, "rejected"),
            (22, "bad_signature"),
            (5, "dispatched"),
            (4, "dispatched"),
            (3, "dispatched"),
            (2, "filtered"),
        ],
    )
    await _deliveries(db, other_tenant.id, theirs, [(40, "dispatched")])
    async with tenant.client() as admin:
        assert (await admin.put("/api/v1/retention/policy", json={"deliveries_per_webhook": 3})).status_code == 200
    async with get_client() as client:
        report = await retention.run_tenant(db, client, _config(), tenant_id=tenant.id, trigger="manual")
    assert report.status == "completed", report.error
    # 3 settled old ones by age (2 batches), then the oldest recent one past the newest 3.
    assert await _delivery_ages(db, tenant.id) == [2, 3, 4]
    assert report.deleted["webhook_deliveries"] == 4
    assert await _delivery_ages(db, other_tenant.id) == [40]


async def test_audit_pruning_keeps_the_chain_verifiable(
    tenant: TenantHandle, api_server: ApiServer, db: Database, prefect_server: Any
) -> None:
    async with tenant.client() as admin:
        for i in range(4):
            assert (await admin.post("/api/v1/api-keys", json={"name": f"k{i}", "role": "viewer"})).status_code == 201
        before = (await admin.get("/api/v1/audit", params={"limit": 500})).json()["items"]
    head = before[0]["seq"]
    assert head >= 7
    # Two years on, every event but the newest is past the 730-day default.
    async with get_client() as client:
        report = await retention.run_tenant(
            db, client, _config(), tenant_id=tenant.id, trigger="manual", now=NOW + timedelta(days=800)
        )
    assert report.status == "completed", report.error
    assert report.deleted["audit_events"] == head - 1
    assert report.batches >= (head - 1) // 2
    async with tenant.client() as admin:
        verified = (await admin.get("/api/v1/audit/verify")).json()
        assert verified == {"valid": True, "broken_at_seq": None}
        kept = (await admin.get("/api/v1/audit", params={"limit": 500})).json()["items"]
        assert [e["seq"] for e in kept] == [head + 1, head]  # the newest and the retention.pruned event
        assert kept[0]["action"] == "retention.pruned"
        policy = (await admin.get("/api/v1/retention/policy")).json()
        assert policy["audit_anchor_seq"] == head - 1

    # Tampering with a kept event, as the database owner, is still found.
    owner = create_async_engine(api_server.database_url)
    try:
        async with owner.begin() as conn:
            await conn.execute(
                sa.text("UPDATE audit_events SET action = 'nothing.happened' WHERE tenant_id = :t AND seq = :s"),
                {"t": tenant.id, "s": head},
            )
        async with tenant.client() as admin:
            assert (await admin.get("/api/v1/audit/verify")).json() == {"valid": False, "broken_at_seq": head}
        # So is removing the first kept event (the anchor no longer links).
        async with owner.begin() as conn:
            await conn.execute(
                sa.text("DELETE FROM audit_events WHERE tenant_id = :t AND seq = :s"), {"t": tenant.id, "s": head}
            )
        async with tenant.client() as admin:
            assert (await admin.get("/api/v1/audit/verify")).json() == {"valid": False, "broken_at_seq": head + 1}
    finally:
        await owner.dispose()


async def test_app_role_prunes_audit_only_through_the_anchoring_function(
    postgres_url: str, tenant: TenantHandle, api_server: ApiServer, db: Database
) -> None:
    if api_server.dialect != "postgresql":
        pytest.skip("row privileges exist only on PostgreSQL")
    async with db.tenant_scope(tenant_id=tenant.id) as session:
        with pytest.raises(Exception, match="permission denied"):
            await session.execute(sa.text("DELETE FROM audit_events WHERE tenant_id = :t"), {"t": tenant.id})
    # The failed transaction did not give the pooled connection back as the login user.
    async with db.tenant_scope(tenant_id=tenant.id) as session:
        assert (await session.execute(sa.text("SELECT current_user"))).scalar() == "gorax_app"
    async with db.tenant_scope(tenant_id=tenant.id) as session:
        with pytest.raises(Exception, match="permission denied"):
            await session.execute(
                sa.text("INSERT INTO audit_anchors (tenant_id, seq, hash, pruned_at) VALUES (:t, 1, 'x', now())"),
                {"t": tenant.id},
            )
    # Another tenant's chain cannot be pruned from this tenant's transaction.
    async with db.tenant_scope(tenant_id=tenant.id) as session:
        with pytest.raises(Exception, match="own transaction"):
            await session.execute(sa.text("SELECT gorax_prune_audit('someone-else', 1)"))


async def test_one_sweep_and_one_run_per_tenant_at_a_time(
    tenant: TenantHandle, db: Database, prefect_server: Any
) -> None:
    async with get_client() as client:
        # Another replica is sweeping: this one does nothing.
        async with retention.try_lock(db, "gorax:retention") as got:
            assert got
            assert await retention.run_all(db, client, _config()) is None
        # A person's run for the tenant is going on: the API answers 409, the sweep skips the tenant.
        async with retention.try_lock(db, f"gorax:retention:{tenant.id}") as got:
            assert got
            async with tenant.client() as admin:
                busy = await admin.post("/api/v1/retention/runs")
                assert busy.status_code == 409, busy.text
            swept = await retention.run_all(db, client, _config())
            assert swept is not None and tenant.id not in {r.tenant_id for r in swept}
        swept = await retention.run_all(db, client, _config())
    assert swept is not None and tenant.id in {r.tenant_id for r in swept}
    assert all(r.trigger == "schedule" for r in swept)
    async with tenant.client() as admin:
        done = await admin.post("/api/v1/retention/runs")
        assert done.status_code == 200 and done.json()["trigger"] == "manual"
        # A scheduled run that deleted nothing writes no audit event; a person's run does.
        pruned = (await admin.get("/api/v1/audit", params={"action": "retention.pruned"})).json()["items"]
        assert len(pruned) == 1 and pruned[0]["actor_id"] != "retention"
