"""The operations dashboard against real Prefect and the Gorax database: seeded runs give the
right per-minute counts, p50/p95 per workflow and error budgets; the tenant's queue depth counts
its waiting runs only; worker health tells a heartbeating worker from a stale one; webhook intake
counts deliveries by verdict; SLOs are admin-only, audited and tenant-scoped.
(Seeded runs: see tests/api/ops_seed.py.)
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.states import Late, Pending, Scheduled
from sqlalchemy import select

from api.app import create_app
from api.auth.permissions import Role
from api.db.engine import Database
from api.models import AuditEvent
from api.webhooks.models import Webhook, WebhookDelivery
from flows import slug, tenant_tag, work_queue_name
from tests.api.conftest import _SHARED_CONFIG, ApiServer, ServerThread, TenantHandle, make_settings, new_tenant
from tests.api.ops_seed import prefect_sql, seed_flow, seed_runs
from tests.api.workflows.conftest import create, graph, transform

API = "/api/v1"


@pytest.fixture(scope="module")
async def ops_pool(prefect_server: Any) -> str:
    """A work pool only these tests use (no worker polls it)."""
    name = f"gorax-ops-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="gorax"))
    return name


@pytest.fixture(scope="module")
def ops_servers(ops_pool: str) -> Iterator[dict[str, ApiServer]]:
    """API servers by database URL whose work pool is ``ops_pool``."""
    servers: dict[str, ApiServer] = {}
    threads: list[ServerThread] = []

    def start(url: str) -> ApiServer:
        if url not in servers:
            settings = make_settings(url, api=_SHARED_CONFIG, work_pool=ops_pool)
            app = create_app(settings)
            threads.append(ServerThread(app).start())
            servers[url] = ApiServer(threads[-1].url, url, settings, app)
        return servers[url]

    yield start  # type: ignore[misc]
    for thread in threads:
        thread.stop()


@pytest.fixture(scope="module")
async def ops_databases() -> AsyncIterator[dict[str, Database]]:
    pools: dict[str, Database] = {}
    yield pools
    for database in pools.values():
        await database.dispose()


async def _tenant(servers: Any, databases: dict[str, Database], url: str) -> tuple[TenantHandle, Database]:
    server = servers(url)
    database = databases.setdefault(url, Database(url))
    return await new_tenant(database, server.url), database


@pytest.fixture
async def ops_tenant(
    ops_servers: Any, ops_databases: dict[str, Database], database_url: str
) -> tuple[TenantHandle, Database]:
    return await _tenant(ops_servers, ops_databases, database_url)


@pytest.fixture
async def ops_other(
    ops_servers: Any, ops_databases: dict[str, Database], database_url: str
) -> tuple[TenantHandle, Database]:
    return await _tenant(ops_servers, ops_databases, database_url)


def _nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(fraction * len(ordered)) - 1]


async def _workflow(client: httpx.AsyncClient, name: str) -> str:
    return str((await create(client, graph(name, transform("t", 1))))["id"])


async def test_runs_durations_and_error_budgets(
    ops_tenant: tuple[TenantHandle, Database], ops_other: tuple[TenantHandle, Database]
) -> None:
    tenant, _ = ops_tenant
    other, _ = ops_other
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    a_outcomes = [(i not in (3, 7), float(i)) for i in range(1, 11)]  # 8 ok, 2 failed, 1..10 s
    b_outcomes = [(True, 2.0), (True, 4.0), (False, 6.0), (True, 8.0)]
    async with tenant.client() as admin, other.client() as foreign, get_client() as prefect:
        a_id, b_id = await _workflow(admin, "ops-a"), await _workflow(admin, "ops-b")
        foreign_id = await _workflow(foreign, "ops-foreign")
        await seed_runs(prefect, tenant.id, a_id, a_outcomes, started)
        await seed_runs(prefect, tenant.id, b_id, b_outcomes, started)
        await seed_runs(prefect, other.id, foreign_id, [(False, 1.0)] * 3, started)

        put = await admin.put(f"{API}/workflows/{a_id}/slo", json={"target": 0.9, "window_days": 7})
        assert put.status_code == 200, put.text
        assert put.json()["target"] == 0.9 and put.json()["updated_by"].startswith("api_key:")
        assert (
            await admin.put(f"{API}/workflows/{b_id}/slo", json={"target": 0.5, "window_days": 1})
        ).status_code == 200

        async with tenant.client(Role.VIEWER) as viewer:
            response = await viewer.get(f"{API}/ops/dashboard", params={"window": "24h"})
        assert response.status_code == 200, response.text
        data = response.json()

    # Runs per minute: 60 minutes, all 14 seeded runs in their start minute.
    series = data["runs_per_minute"]
    assert len(series) == 60 and data["runs_last_hour"] == 14
    minute = {datetime.fromisoformat(m["start"]): m for m in series}[started.replace(second=0)]
    assert (minute["total"], minute["completed"], minute["failed"]) == (14, 11, 3)
    assert data["success_rate"] == pytest.approx(11 / 14)

    stats = {w["workflow_id"]: w for w in data["workflows"]}
    assert set(stats) == {a_id, b_id}  # the other tenant's runs are not here
    a = stats[a_id]
    assert a["workflow_name"] == "ops-a" and (a["total"], a["completed"], a["failed"]) == (10, 8, 2)
    assert a["p50_ms"] == _nearest_rank([i * 1000.0 for i in range(1, 11)], 0.5) == 5000
    assert a["p95_ms"] == 10000
    b = stats[b_id]
    assert (b["p50_ms"], b["p95_ms"], b["success_rate"]) == (4000, 8000, 0.75)

    budgets = {x["workflow_id"]: x for x in data["error_budgets"]}
    assert set(budgets) == {a_id, b_id}
    # A: 10 runs at 90% allow 1 failure; 2 failed: twice the budget, burning at 2x.
    assert budgets[a_id]["runs"] == 10 and budgets[a_id]["failed"] == 2
    assert budgets[a_id]["allowed_failures"] == pytest.approx(1.0)
    assert budgets[a_id]["consumed"] == pytest.approx(2.0)
    assert budgets[a_id]["remaining"] == pytest.approx(-1.0)
    assert budgets[a_id]["burn_rate"] == pytest.approx(2.0) and budgets[a_id]["burn_rate_1h"] == pytest.approx(2.0)
    assert budgets[a_id]["state"] == "exhausted"
    # B: 4 runs at 50% allow 2 failures; 1 failed: half the budget left.
    assert budgets[b_id]["consumed"] == pytest.approx(0.5) and budgets[b_id]["remaining"] == pytest.approx(0.5)
    assert budgets[b_id]["burn_rate"] == pytest.approx(0.5) and budgets[b_id]["state"] == "ok"
    assert data["error_budgets"][0]["workflow_id"] == a_id  # least budget left first

    async with other.client(Role.VIEWER) as foreign_viewer:
        theirs = (await foreign_viewer.get(f"{API}/ops/dashboard")).json()
    assert [w["workflow_id"] for w in theirs["workflows"]] == [foreign_id]
    assert theirs["runs_last_hour"] == 3 and theirs["error_budgets"] == []
    assert [c["workflow_id"] for c in theirs["slo_candidates"]] == [foreign_id]


async def test_slo_is_admin_only_validated_audited_and_tenant_scoped(
    ops_tenant: tuple[TenantHandle, Database], ops_other: tuple[TenantHandle, Database]
) -> None:
    tenant, database = ops_tenant
    other, _ = ops_other
    async with tenant.client() as admin, other.client() as foreign:
        workflow_id = await _workflow(admin, "ops-slo")
        for role in (Role.EDITOR, Role.OPERATOR, Role.VIEWER):
            async with tenant.client(role) as client:
                denied = await client.put(
                    f"{API}/workflows/{workflow_id}/slo", json={"target": 0.99, "window_days": 30}
                )
                assert denied.status_code == 403, role
        bad = await admin.put(f"{API}/workflows/{workflow_id}/slo", json={"target": 1, "window_days": 30})
        assert bad.status_code == 422 and "target" in bad.text
        bad = await admin.put(f"{API}/workflows/{workflow_id}/slo", json={"target": 0.99, "window_days": 0})
        assert bad.status_code == 422 and "window_days" in bad.text
        assert (
            await foreign.put(f"{API}/workflows/{workflow_id}/slo", json={"target": 0.99, "window_days": 30})
        ).status_code == 404
        assert (
            await admin.put(f"{API}/workflows/{workflow_id}/slo", json={"target": 0.99, "window_days": 30})
        ).status_code == 200
        changed = await admin.put(f"{API}/workflows/{workflow_id}/slo", json={"target": 0.95, "window_days": 14})
        assert changed.json()["target"] == 0.95 and changed.json()["window_days"] == 14
        budget = (await admin.get(f"{API}/ops/dashboard")).json()["error_budgets"]
        assert [(b["workflow_id"], b["target"], b["state"]) for b in budget] == [(workflow_id, 0.95, "no_data")]
        assert (await foreign.get(f"{API}/ops/dashboard")).json()["error_budgets"] == []
        assert (await foreign.delete(f"{API}/workflows/{workflow_id}/slo")).status_code == 404
        assert (await admin.delete(f"{API}/workflows/{workflow_id}/slo")).status_code == 204
        assert (await admin.delete(f"{API}/workflows/{workflow_id}/slo")).status_code == 404
    async with database.system_scope() as session:
        events = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.before, AuditEvent.after)
                .where(AuditEvent.tenant_id == tenant.id, AuditEvent.resource_id == workflow_id)
                .order_by(AuditEvent.seq)
            )
        ).all()
    assert [e.action for e in events if e.action.startswith("workflow.slo")] == [
        "workflow.slo.set",
        "workflow.slo.set",
        "workflow.slo.delete",
    ]
    slo_events = [e for e in events if e.action.startswith("workflow.slo")]
    assert slo_events[1].before == {"target": 0.99, "window_days": 30}
    assert slo_events[1].after == {"target": 0.95, "window_days": 14}


async def test_queue_depth_and_worker_health(
    ops_pool: str, ops_tenant: tuple[TenantHandle, Database], ops_other: tuple[TenantHandle, Database]
) -> None:
    tenant, _ = ops_tenant
    other, _ = ops_other
    queue = work_queue_name(tenant.id)
    soon = datetime.now(UTC) + timedelta(hours=1)
    fresh, stale = f"fresh-{uuid.uuid4().hex[:6]}", f"stale-{uuid.uuid4().hex[:6]}"
    async with get_client() as prefect:
        await prefect.create_work_queue(name=queue, work_pool_name=ops_pool)
        await prefect.create_work_queue(name=work_queue_name(other.id), work_pool_name=ops_pool)
        states = (
            [Scheduled(scheduled_time=soon)] * 3 + [Late(scheduled_time=soon - timedelta(hours=2))] * 2 + [Pending()]
        )
        for state in states:
            await prefect.create_flow_run(
                seed_flow, tags=[tenant_tag(tenant.id)], state=state, work_pool_name=ops_pool, work_queue_name=queue
            )
        # Another tenant's run in this queue and in its own is not counted.
        for name in (queue, work_queue_name(other.id)):
            await prefect.create_flow_run(
                seed_flow,
                tags=[tenant_tag(other.id)],
                state=Scheduled(scheduled_time=soon),
                work_pool_name=ops_pool,
                work_queue_name=name,
            )
        await prefect.send_worker_heartbeat(ops_pool, fresh, heartbeat_interval_seconds=30)
        await prefect.send_worker_heartbeat(ops_pool, stale, heartbeat_interval_seconds=30)
    # Its last heartbeat was 10 minutes ago.
    await prefect_sql(
        "UPDATE worker SET last_heartbeat_time = :t WHERE name = :n",
        [{"t": datetime.now(UTC) - timedelta(minutes=10), "n": stale}],
    )

    async with tenant.client(Role.OPERATOR) as operator:
        data = (await operator.get(f"{API}/ops/dashboard", params={"window": "1h"})).json()
    [row] = data["queues"]
    assert (row["pool"], row["name"], row["exists"], row["paused"]) == (ops_pool, queue, True, False)
    assert (row["scheduled"], row["late"], row["pending"]) == (3, 2, 1)
    workers = {w["name"]: w for w in row["workers"]}
    assert workers[fresh]["healthy"] is True and workers[fresh]["status"] == "online"
    assert workers[stale]["healthy"] is False
    assert workers[stale]["last_heartbeat"] < workers[fresh]["last_heartbeat"]
    assert row["workers"][0]["healthy"] is True  # healthy workers first

    async with other.client(Role.VIEWER) as viewer:
        [theirs] = (await viewer.get(f"{API}/ops/dashboard")).json()["queues"]
    assert theirs["name"] == f"tenant-{slug(other.id)}"
    assert (theirs["scheduled"], theirs["late"], theirs["pending"]) == (1, 0, 0)


async def test_webhook_intake_by_verdict(
    ops_tenant: tuple[TenantHandle, Database], ops_other: tuple[TenantHandle, Database]
) -> None:
    tenant, database = ops_tenant
    other, _ = ops_other
    now = datetime.now(UTC)
    async with tenant.client() as admin, other.client() as foreign:
        workflow_id = await _workflow(admin, "ops-hooks")
        foreign_id = await _workflow(foreign, "ops-hooks-foreign")
    verdicts = {
        "accepted": 2,
        "dispatched": 3,
        "direct": 1,
        "bad_signature": 4,
        "filtered": 1,
        "duplicate": 1,
    }
    async with database.system_scope() as session:
        hooks = {}
        for owner, wid in ((tenant.id, workflow_id), (other.id, foreign_id)):
            hook = Webhook(
                tenant_id=owner, workflow_id=wid, node_id="hook", token=uuid.uuid4().hex, config={}, active=True
            )
            session.add(hook)
            hooks[owner] = hook
        await session.flush()

        def delivery(owner: str, wid: str, status: str, at: datetime) -> WebhookDelivery:
            return WebhookDelivery(
                tenant_id=owner,
                webhook_id=hooks[owner].id,
                workflow_id=wid,
                node_id="hook",
                status=status,
                method="POST",
                headers={},
                query={},
                body=b"{}",
                received_at=at,
                # A direct delivery that started its run (one without would be the dispatcher's).
                run_id=str(uuid.uuid4()) if status == "direct" else None,
            )

        for status, count in verdicts.items():
            for _ in range(count):
                session.add(delivery(tenant.id, workflow_id, status, now - timedelta(minutes=2)))
        # Three hours ago: in the 24h totals, not in the last hour's series nor the 1h totals.
        session.add(delivery(tenant.id, workflow_id, "bad_signature", now - timedelta(hours=3)))
        for _ in range(5):
            session.add(delivery(other.id, foreign_id, "accepted", now - timedelta(minutes=2)))
        await session.commit()

    async with tenant.client(Role.VIEWER) as viewer:
        hour = (await viewer.get(f"{API}/ops/dashboard", params={"window": "1h"})).json()["webhooks"]
        day = (await viewer.get(f"{API}/ops/dashboard", params={"window": "24h"})).json()["webhooks"]
        bad = await viewer.get(f"{API}/ops/dashboard", params={"window": "2h"})
    assert bad.status_code == 422 and "window" in bad.text
    minute = {datetime.fromisoformat(m["start"]): m for m in hour["per_minute"]}[
        (now - timedelta(minutes=2)).replace(second=0, microsecond=0)
    ]
    assert (minute["accepted"], minute["rejected"], minute["ignored"]) == (6, 4, 2)
    assert sum(m["accepted"] + m["rejected"] + m["ignored"] for m in hour["per_minute"]) == 12
    assert (hour["total"], hour["accepted"], hour["rejected"], hour["ignored"]) == (12, 6, 4, 2)
    assert hour["failure_rate"] == pytest.approx(4 / 12)
    # The API's dispatcher may already have sent the accepted ones on (accepted -> dispatched).
    by_status = dict(hour["by_status"])
    sent = by_status.pop("accepted", 0) + by_status.pop("dispatched")
    expected = dict(verdicts)
    assert sent == expected.pop("accepted") + expected.pop("dispatched")
    assert by_status == expected
    assert (day["total"], day["rejected"]) == (13, 5)
