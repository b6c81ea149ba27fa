"""Tenant quotas through a real API, a real Prefect server and the warm worker: runs per month,
concurrent runs (a Prefect global concurrency limit), webhook requests per minute, storage,
and the usage endpoint."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from api.auth.permissions import Role
from api.db.engine import Database
from api.services.audit import AuditContext
from api.services.quotas import month_window, set_tenant_quota
from flows.naming import tenant_quota_variable, tenant_runs_limit
from tests.api.conftest import _SHARED_CONFIG, TenantHandle
from tests.api.workflows.conftest import create, graph, publish, transform

API = "/api/v1"


async def _set(databases: dict[str, Database], tenant: TenantHandle, **values: int | None) -> None:
    database = next(d for d in databases.values() if d.url.startswith("sqlite"))
    async with get_client() as prefect:
        await set_tenant_quota(
            database,
            prefect,
            tenant_ref=tenant.id,
            values=values,
            config=_SHARED_CONFIG,
            context=AuditContext.system("tests"),
        )


async def _published(client: Any, g: dict[str, Any]) -> str:
    wid = (await create(client, g))["id"]
    await publish(client, wid)
    return wid


async def _final(client: Any, execution_id: str) -> dict[str, Any]:
    for _ in range(600):
        body = (await client.get(f"{API}/executions/{execution_id}")).json()
        if body["status"] in ("completed", "failed", "crashed", "cancelled"):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"execution {execution_id} did not finish")


def _usage(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in body["items"]}


async def test_runs_per_month_refuses_with_limit_used_and_reset(
    run_tenant: TenantHandle, sq_other: TenantHandle, wf_databases: dict[str, Database]
) -> None:
    await _set(wf_databases, run_tenant, runs_per_month=1)
    async with run_tenant.client() as client, sq_other.client() as other:
        wid = await _published(client, graph("monthly", transform("a", "{{ trigger }}")))
        first = await client.post(f"{API}/workflows/{wid}/execute", json={"input": {"n": 1}})
        assert first.status_code == 202, first.text
        refused = await client.post(f"{API}/workflows/{wid}/execute", json={"input": {"n": 2}})
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        _, reset = month_window()
        assert error["code"] == "QUOTA_EXCEEDED"
        assert error["details"] == {"limit": "runs_per_month", "max": 1, "used": 1, "resets_at": reset.isoformat()}
        assert "runs_per_month" in error["message"]
        retry_after = int(refused.headers["Retry-After"])
        assert abs(retry_after - (reset - datetime.now(UTC)).total_seconds()) < 60
        # A retry is a new run too.
        retried = await client.post(f"{API}/executions/{first.json()['execution_id']}/retry")
        assert retried.status_code == 429 and retried.json()["error"]["details"]["limit"] == "runs_per_month"

        usage = _usage((await client.get(f"{API}/tenant/usage")).json())
        assert usage["runs_per_month"] | {"resets_at": None} == {
            "name": "runs_per_month",
            "unit": "runs",
            "limit": 1,
            "unlimited": False,
            "source": "tenant",
            "used": 1,
            "resets_at": None,
        }
        assert datetime.fromisoformat(usage["runs_per_month"]["resets_at"]) == reset

        # Another tenant has its own count and the operator's default (unlimited).
        other_usage = _usage((await other.get(f"{API}/tenant/usage")).json())
        assert other_usage["runs_per_month"]["used"] == 0
        assert other_usage["runs_per_month"]["unlimited"] and other_usage["runs_per_month"]["source"] == "default"
        other_wid = await _published(other, graph("theirs", transform("a", "{{ trigger }}")))
        ok = await other.post(f"{API}/workflows/{other_wid}/execute", json={"input": {}})
        assert ok.status_code == 202, ok.text

        # A run Prefect starts by itself (as a schedule or an automation does) is held when it starts.
        async with get_client() as prefect:
            deployment_id = (await prefect.read_flow_run(first.json()["execution_id"])).deployment_id
            assert deployment_id is not None
            held = await prefect.create_flow_run_from_deployment(
                deployment_id, tags=[f"tenant:{run_tenant.id}", f"workflow:{wid}"]
            )
            for _ in range(600):
                held = await prefect.read_flow_run(held.id)
                if held.state is not None and held.state.is_final():
                    break
                await asyncio.sleep(0.2)
        assert held.state is not None and (held.state.type.value, held.state.name) == ("CANCELLED", "OverQuota")
        assert "runs_per_month" in (held.state.message or "")
        assert _usage((await client.get(f"{API}/tenant/usage")).json())["runs_per_month"]["used"] == 1

        # Back to the default: runs start again.
        await _set(wf_databases, run_tenant, runs_per_month=None)
        again = await client.post(f"{API}/workflows/{wid}/execute", json={"input": {"n": 3}})
        assert again.status_code == 202, again.text
        await _final(client, first.json()["execution_id"])
        await _final(client, again.json()["execution_id"])

        # The usage page is the admins'.
    async with run_tenant.client(Role.EDITOR) as editor:
        assert (await editor.get(f"{API}/tenant/usage")).status_code == 403


async def test_concurrent_runs_wait_for_a_prefect_slot(
    run_tenant: TenantHandle, wf_databases: dict[str, Database]
) -> None:
    await _set(wf_databases, run_tenant, concurrent_runs=1)
    async with get_client() as prefect:
        limit = await prefect.read_global_concurrency_limit_by_name(tenant_runs_limit(run_tenant.id))
    assert (limit.limit, limit.active) == (1, True)
    slow = graph(
        "one at a time",
        {"id": "wait", "type": "control.delay", "position": {"x": 0, "y": 100}, "config": {"seconds": 2}},
        transform("done", "{{ trigger.n }}"),
    )
    async with run_tenant.client() as client:
        wid = await _published(client, slow)
        started = [
            (await client.post(f"{API}/workflows/{wid}/execute", json={"input": {"n": n}})).json()["execution_id"]
            for n in (1, 2)
        ]
        # While one runs, the tenant's one slot is taken: the usage shows it.
        for _ in range(200):
            usage = _usage((await client.get(f"{API}/tenant/usage")).json())
            if usage["concurrent_runs"]["used"] == 1:
                break
            await asyncio.sleep(0.1)
        assert usage["concurrent_runs"]["used"] == 1 and usage["concurrent_runs"]["limit"] == 1
        runs = [await _final(client, execution_id) for execution_id in started]
    assert [r["status"] for r in runs] == ["completed", "completed"]
    waits = sorted(([s for s in r["steps"] if s["node_id"] == "wait"][0] for r in runs), key=lambda s: s["started_at"])
    # Neither failed: the second waited, and its nodes started only after the first's ended.
    first_end = max(s["ended_at"] for r in runs for s in r["steps"] if s["started_at"] == waits[0]["started_at"])
    second_steps = [r for r in runs if any(s["started_at"] == waits[1]["started_at"] for s in r["steps"])][0]
    first_run = [r for r in runs if r is not second_steps][0]
    assert min(s["started_at"] for s in second_steps["steps"]) >= max(s["ended_at"] for s in first_run["steps"])
    assert first_end <= waits[1]["started_at"]

    # Unlimited again: the limit stays, inactive, so Prefect holds no run back.
    await _set(wf_databases, run_tenant, concurrent_runs=0)
    async with get_client() as prefect:
        limit = await prefect.read_global_concurrency_limit_by_name(tenant_runs_limit(run_tenant.id))
    assert limit.active is False

    # A run of a tenant without an active limit takes no slot: no slot writes on the Prefect
    # server, and no "limit does not exist" warning in the run's log when there is none at all.
    async with get_client() as prefect:
        await prefect.delete_global_concurrency_limit_by_name(tenant_runs_limit(run_tenant.id))
    async with run_tenant.client() as client:
        execution_id = (await client.post(f"{API}/workflows/{wid}/execute", json={"input": {"n": 3}})).json()[
            "execution_id"
        ]
        assert (await _final(client, execution_id))["status"] == "completed"
    async with get_client() as prefect:
        run_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(execution_id)]))
        for _ in range(100):
            messages = [log.message for log in await prefect.read_logs(log_filter=run_filter)]
            if any("Finished in state" in m for m in messages):
                break
            await asyncio.sleep(0.2)
    assert any("Finished in state" in m for m in messages), messages
    assert not [m for m in messages if "oncurrency limit" in m], messages


async def test_webhook_requests_per_minute_per_tenant(
    sq_tenant: TenantHandle, sq_other: TenantHandle, wf_databases: dict[str, Database]
) -> None:
    def hooked(name: str) -> dict[str, Any]:
        nodes = [
            {"id": "hook", "type": "trigger.webhook", "position": {"x": 0, "y": 0}, "config": {}},
            {"id": "out", "type": "control.output", "position": {"x": 0, "y": 100}, "config": {"value": 1}},
        ]
        return {
            "format": "gorax/graph@1",
            "name": name,
            "nodes": nodes,
            "edges": [{"id": "e", "source": "hook", "target": "out"}],
        }

    async def url_of(client: Any, wid: str) -> str:
        hooks = (await client.get(f"{API}/webhooks", params={"workflow_id": wid})).json()["items"]
        return str(hooks[0]["url"])

    # Within the current minute's window, so the three requests are counted together.
    if datetime.now(UTC).second > 50:
        await asyncio.sleep(61 - datetime.now(UTC).second)
    await _set(wf_databases, sq_tenant, webhook_requests_per_minute=2)
    async with sq_tenant.client() as client, sq_other.client() as other:
        url = await url_of(client, await _published(client, hooked("hooked")))
        other_url = await url_of(other, await _published(other, hooked("theirs")))
        body = json.dumps({"x": 1}).encode()
        headers = {"Content-Type": "application/json"}
        answers = [(await client.post(url, content=body, headers=headers)) for _ in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 429], [a.text for a in answers]
        error = answers[2].json()["error"]
        assert error["code"] == "QUOTA_EXCEEDED"
        assert error["details"]["limit"] == "webhook_requests_per_minute"
        assert error["details"]["max"] == 2 and error["details"]["used"] == 3
        assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
        # Another tenant's webhooks are not counted with this one's.
        for _ in range(3):
            assert (await other.post(other_url, content=body, headers=headers)).status_code == 202
        usage = _usage((await client.get(f"{API}/tenant/usage")).json())["webhook_requests_per_minute"]
        assert (usage["limit"], usage["used"]) == (2, 3)
        assert _usage((await other.get(f"{API}/tenant/usage")).json())["webhook_requests_per_minute"]["used"] == 0


async def test_storage_quota_refuses_saves_and_runs(sq_tenant: TenantHandle, wf_databases: dict[str, Database]) -> None:
    async with sq_tenant.client() as client:
        wid = await _published(client, graph("stored", transform("a", "x" * 2000)))
        usage = _usage((await client.get(f"{API}/tenant/usage")).json())["storage_bytes"]
        assert usage["used"] > 2000 and usage["unlimited"]
        await _set(wf_databases, sq_tenant, storage_bytes=1000)
        refused = await client.post(f"{API}/workflows", json={"name": "more", "graph": graph("more")})
        assert refused.status_code == 413, refused.text
        details = refused.json()["error"]["details"]
        assert details["limit"] == "storage_bytes" and details["max"] == 1000 and details["used"] > 2000
        etag = {"If-Match": (await client.get(f"{API}/workflows/{wid}")).headers["ETag"]}
        saved = await client.put(f"{API}/workflows/{wid}", json={"graph": graph("stored")}, headers=etag)
        assert saved.status_code == 413 and saved.json()["error"]["details"]["limit"] == "storage_bytes"
        run = await client.post(f"{API}/workflows/{wid}/execute", json={"input": {}})
        assert run.status_code == 413 and run.json()["error"]["details"]["limit"] == "storage_bytes"
        # What frees nothing but stores nothing new is not held back.
        renamed = await client.put(f"{API}/workflows/{wid}", json={"name": "renamed"}, headers=etag)
        assert renamed.status_code == 200, renamed.text
        # The operator's change is in the tenant's audit log.
        events = (await client.get(f"{API}/audit", params={"action": "tenant.quota.set"})).json()["items"]
        assert events and events[0]["after"]["storage_bytes"] == 1000


@pytest.mark.parametrize("value", ["-1", "x"])
def test_cli_refuses_a_bad_limit(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    from api.cli import main

    with pytest.raises(SystemExit):
        main(["quotas", "set", "some-tenant", "--runs-per-month", value])
    assert "--runs-per-month" in capsys.readouterr().err


async def test_operator_defaults_reach_prefect_for_every_tenant(
    sq_tenant: TenantHandle, sq_other: TenantHandle, wf_databases: dict[str, Database]
) -> None:
    from api.services import quotas

    await _set(wf_databases, sq_other, concurrent_runs=7)
    database = next(d for d in wf_databases.values() if d.url.startswith("sqlite"))
    config = _SHARED_CONFIG.model_copy(update={"quota_concurrent_runs": 3, "quota_runs_per_month": 500})
    quotas._synced.clear()
    async with get_client() as prefect:
        assert await quotas.sync_all(database, prefect, config=config) >= 2
        mine = await prefect.read_global_concurrency_limit_by_name(tenant_runs_limit(sq_tenant.id))
        theirs = await prefect.read_global_concurrency_limit_by_name(tenant_runs_limit(sq_other.id))
        mirrored = await prefect.read_variable_by_name(tenant_quota_variable(sq_tenant.id))
        # The server's own defaults (unlimited) again, for the other tests' tenants.
        await quotas.sync_all(database, prefect, config=_SHARED_CONFIG)
        unlimited = await prefect.read_global_concurrency_limit_by_name(tenant_runs_limit(sq_tenant.id))
        assert await prefect.read_variable_by_name(tenant_quota_variable(sq_tenant.id)) is None
    assert unlimited.active is False
    assert (mine.limit, mine.active) == (3, True)
    assert (theirs.limit, theirs.active) == (7, True)  # its own limit beats the default
    assert mirrored is not None and mirrored.value == {"runs_per_month": 500}
