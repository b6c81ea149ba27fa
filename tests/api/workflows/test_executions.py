"""Executions through the HTTP API against the real Prefect server and a warm gorax worker."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets

from api.auth.permissions import Role
from tests.api.conftest import TenantHandle
from tests.api.workflows.conftest import create, graph, publish, transform

API = "/api/v1"


def _greeting_graph(name: str) -> dict[str, Any]:
    return graph(
        name,
        transform("shape", {"n": "{{ trigger.n * 2 }}", "hello": "{{ env.GREETING }}"}),
        {
            "id": "done",
            "type": "control.output",
            "position": {"x": 0, "y": 200},
            "config": {"value": {"doubled": "{{ steps.shape.n }}", "hello": "{{ steps.shape.hello }}"}},
        },
    )


async def _published(client: httpx.AsyncClient, g: dict[str, Any]) -> str:
    wid = (await create(client, g))["id"]
    await publish(client, wid)
    return wid


async def _wait_status(
    client: httpx.AsyncClient, execution_id: str, wanted: set[str], deadline: float = 60
) -> dict[str, Any]:
    for _ in range(int(deadline * 4)):
        body = (await client.get(f"{API}/executions/{execution_id}")).json()
        if body["status"] in wanted:
            return body
        await asyncio.sleep(0.25)
    raise AssertionError(f"execution {execution_id} stayed {body['status']}")


async def test_execute_with_wait_returns_output_and_steps(run_tenant: TenantHandle, sq_other: TenantHandle) -> None:
    async with run_tenant.client() as client:
        created = await client.post(f"{API}/variables", json={"name": "GREETING", "value": "hi"})
        assert created.status_code == 201, created.text
        wid = await _published(client, _greeting_graph("greeter"))
        unstorable = await client.post(f"{API}/workflows/{wid}/execute", json={"input": {"n": "2\u00001"}})
        assert unstorable.status_code == 422 and "input.n" in unstorable.text
        response = await client.post(
            f"{API}/workflows/{wid}/execute", json={"input": {"n": 21}, "wait": True, "timeout_seconds": 90}
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["status"] == "completed"
        assert result["output"] == {"doubled": 42, "hello": "hi"}
        steps = {s["node_id"]: s for s in result["steps"]}
        assert set(steps) == {"start", "shape", "done"}
        assert steps["shape"]["status"] == "completed" and steps["shape"]["attempts"] == 1
        assert steps["shape"]["output"] == {"n": 42, "hello": "hi"}
        assert steps["shape"]["duration_ms"] is not None

        execution_id = result["execution_id"]
        detail = (await client.get(f"{API}/executions/{execution_id}")).json()
        assert detail["workflow_id"] == wid and detail["version"] == 1
        assert detail["input"] == {"n": 21} and detail["trigger_type"] == "manual"
        assert detail["prefect_url"].endswith(f"/runs/flow-run/{execution_id}")
        listed = (await client.get(f"{API}/executions", params={"workflow_id": wid})).json()
        assert [e["id"] for e in listed["items"]] == [execution_id]

        retry = await client.post(f"{API}/executions/{execution_id}/retry")
        assert retry.status_code == 202
        again = await _wait_status(client, retry.json()["execution_id"], {"completed", "failed"})
        assert again["status"] == "completed" and again["output"] == {"doubled": 42, "hello": "hi"}
        assert again["trigger_type"] == "retry"

    async with sq_other.client() as intruder:
        for method, path in (
            ("GET", f"/executions/{execution_id}"),
            ("GET", f"/executions/{execution_id}/steps"),
            ("POST", f"/executions/{execution_id}/cancel"),
            ("POST", f"/executions/{execution_id}/retry"),
        ):
            assert (await intruder.request(method, API + path)).status_code == 404, path
        assert (await intruder.get(f"{API}/executions")).json()["total"] == 0
        variables = (await intruder.get(f"{API}/variables")).json()["items"]
        assert variables == []


async def test_pagination_filters_and_a_failed_run(run_tenant: TenantHandle) -> None:
    failing = graph("fails", transform("boom", "{{ trigger.missing.key }}"))
    async with run_tenant.client() as client:
        ok_id = await _published(client, graph("quick", transform("a", "{{ trigger }}")))
        bad_id = await _published(client, failing)
        started = []
        for i in range(3):
            response = await client.post(f"{API}/workflows/{ok_id}/execute", json={"input": i})
            assert response.status_code == 202
            started.append(response.json()["execution_id"])
        failed = await client.post(
            f"{API}/workflows/{bad_id}/execute", json={"input": {}, "wait": True, "timeout_seconds": 90}
        )
        assert failed.status_code == 200 and failed.json()["status"] == "failed"
        boom = next(s for s in failed.json()["steps"] if s["node_id"] == "boom")
        assert boom["status"] == "failed" and "missing" in boom["error"]["message"]

        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"workflow_id": ok_id, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get(f"{API}/executions", params=params)).json()
            assert page["total"] == 3
            seen += [e["id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(started)
        only_failed = (await client.get(f"{API}/executions", params={"status": "failed"})).json()
        assert [e["workflow_id"] for e in only_failed["items"]] == [bad_id]
        assert (await client.get(f"{API}/executions", params={"status": "bogus"})).status_code == 400

        for execution_id in started:
            await _wait_status(client, execution_id, {"completed"})
        stats = (await client.get(f"{API}/analytics/executions", params={"interval": "hour"})).json()
        assert stats["total"] == 4 and stats["success_rate"] == 0.75
        assert sum(b["total"] for b in stats["buckets"]) == 4
        assert stats["failures_by_workflow"][0]["workflow_id"] == bad_id
        assert stats["failures_by_node"] == [{"workflow_id": bad_id, "node_id": "boom", "failures": 1}]
        assert stats["recent_failures"][0]["node_id"] == "boom"
        assert stats["p50_ms"] is not None and stats["p95_ms"] >= stats["p50_ms"]
        per_workflow = {w["workflow_id"]: w for w in (await client.get(f"{API}/analytics/workflows")).json()["items"]}
        assert per_workflow[ok_id]["completed"] == 3 and per_workflow[bad_id]["failed"] == 1


async def test_cancel_a_running_execution(run_tenant: TenantHandle) -> None:
    slow = graph(
        "slow", {"id": "nap", "type": "control.delay", "position": {"x": 0, "y": 100}, "config": {"seconds": 60}}
    )
    async with run_tenant.client(Role.OPERATOR) as operator, run_tenant.client() as admin:
        wid = await _published(admin, slow)
        started = await operator.post(f"{API}/workflows/{wid}/execute", json={"input": {}})
        execution_id = started.json()["execution_id"]
        await _wait_status(operator, execution_id, {"running"})
        cancelled = await operator.post(f"{API}/executions/{execution_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        final = await _wait_status(operator, execution_id, {"cancelled"})
        assert final["status"] == "cancelled"
        again = await operator.post(f"{API}/executions/{execution_id}/cancel")
        assert again.status_code == 409


async def test_wait_times_out_with_the_execution_id(run_tenant: TenantHandle) -> None:
    slow = graph(
        "slow-wait", {"id": "nap", "type": "control.delay", "position": {"x": 0, "y": 100}, "config": {"seconds": 30}}
    )
    async with run_tenant.client() as client:
        wid = await _published(client, slow)
        response = await client.post(f"{API}/workflows/{wid}/execute", json={"wait": True, "timeout_seconds": 1})
        assert response.status_code == 504
        execution_id = response.json()["error"]["details"]["execution_id"]
        assert (await client.post(f"{API}/executions/{execution_id}/cancel")).status_code == 200


async def test_events_websocket_delivers_node_states_in_order(run_tenant: TenantHandle, sq_other: TenantHandle) -> None:
    chain = graph(
        "chain",
        transform("first", 1),
        transform("second", "{{ steps.first + 1 }}"),
        transform("third", "{{ steps.second + 1 }}"),
    )
    async with run_tenant.client() as client:
        wid = await _published(client, chain)
        execution_id = (await client.post(f"{API}/workflows/{wid}/execute", json={"input": {}})).json()["execution_id"]
    ws_url = run_tenant.base_url.replace("http://", "ws://")
    url = f"{ws_url}{API}/executions/{execution_id}/events?token={run_tenant.keys[Role.VIEWER]}"
    messages = []
    async with websockets.connect(url) as ws:
        async with asyncio.timeout(90):
            async for raw in ws:
                messages.append(json.loads(raw))
                if messages[-1].get("type") == "run":
                    break
    assert messages[-1] == {"type": "run", "status": "completed"}
    nodes = [m for m in messages if "node_id" in m]
    order = [m["node_id"] for m in nodes if m["status"] == "completed"]
    assert order == ["start", "first", "second", "third"]
    for node in ("first", "second", "third"):
        statuses = [m["status"] for m in nodes if m["node_id"] == node]
        assert statuses.index("running") < statuses.index("completed"), (node, statuses)

    other = f"{ws_url}{API}/executions/{execution_id}/events?token={sq_other.keys[Role.ADMIN]}"
    async with websockets.connect(other) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 30)
            raise AssertionError("another tenant received events")
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 4404
