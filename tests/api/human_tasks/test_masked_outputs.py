"""A credential a peer echoes back is masked wherever a run's data leaves the worker.

The peer answers with the Authorization header it received (and its base64). Every exit is
read through the API or Prefect: the ``execute?wait=true`` answer, ``GET /executions/{id}`` and
its steps, a webhook's ``respond: after_run`` answer, a sub-workflow's own result, the run's
logs, a human task's title and snapshot, and the result of a run resumed on another worker
(which never loaded the credential itself).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId, LogFilter, LogFilterFlowRunId

from tests.api.human_tasks.conftest import execution_status, open_task, start_worker
from tests.peers import HttpPeer, PeerResponse, RecordedRequest

TOKEN = f"tok-{uuid.uuid4().hex}"
FORMS = (TOKEN, base64.b64encode(TOKEN.encode()).decode().rstrip("="))


def _echo(request: RecordedRequest) -> PeerResponse:
    auth = request.headers.get("authorization", "")
    token = auth.removeprefix("Bearer ")
    return PeerResponse(200, {"auth": auth, "b64": base64.b64encode(token.encode()).decode()})


def _deny(request: RecordedRequest) -> PeerResponse:
    return PeerResponse(400, {"error": f"bad token {request.headers.get('authorization')}"})


def _call(node_id: str, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "http.request",
        "position": {"x": 0, "y": 100},
        "config": {"method": "POST", "url": "{{ env.PEER_URL }}" + path, "credential": "peer_token", "json": {"n": 1}},
        **extra,
    }


def _node(node_id: str, type_: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"id": node_id, "type": type_, "position": {"x": 0, "y": 200}, "config": config}


def _graph(name: str, nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": f"{name}-{uuid.uuid4().hex[:6]}",
        "nodes": nodes,
        "edges": [{"id": f"e{i}", "source": s, "target": t} for i, (s, t) in enumerate(edges)],
    }


def echo_graph() -> dict[str, Any]:
    """Manual and webhook triggers, the echo, a call whose error quotes the header, the output."""
    return _graph(
        "echo",
        [
            _node("start", "trigger.manual", {}),
            _node("hook", "trigger.webhook", {"signature": {"scheme": "none"}, "respond": "after_run"}),
            _call("call", "/echo"),
            _call("deny", "/deny", on_error="continue"),
            _node(
                "out",
                "control.output",
                {"value": {"echo": "{{ steps.call.body }}", "error": "{{ steps.deny.error.message }}"}},
            ),
        ],
        [("start", "call"), ("hook", "call"), ("call", "deny"), ("deny", "out")],
    )


def assert_masked(what: str, data: Any) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    leaked = [form for form in FORMS if form in text]
    assert not leaked, f"{what} shows the credential: {text[:600]}"


async def _publish(client: httpx.AsyncClient, graph: dict[str, Any]) -> str:
    response = await client.post("/api/v1/workflows", json={"name": graph["name"], "graph": graph})
    assert response.status_code == 201, response.text
    workflow_id = response.json()["id"]
    response = await client.post(f"/api/v1/workflows/{workflow_id}/publish", json={})
    assert response.status_code == 201, response.text
    return workflow_id


async def _logs(flow_run_id: str) -> list[str]:
    async with get_client() as client:
        logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(flow_run_id)])))
    return [log.message for log in logs]


async def _child_runs(parent_id: str) -> list[Any]:
    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[uuid.UUID(parent_id)]))
        )


async def _setup(client: httpx.AsyncClient, peer: HttpPeer) -> None:
    response = await client.post(
        "/api/v1/credentials",
        json={"name": "peer_token", "type": "http-auth", "values": {"scheme": "bearer", "token": TOKEN}},
    )
    assert response.status_code == 201, response.text
    response = await client.post("/api/v1/variables", json={"name": "PEER_URL", "value": peer.url})
    assert response.status_code in (200, 201), response.text


async def test_echoed_credential_is_masked_at_every_exit(tenant, pool, api) -> None:
    peer = HttpPeer().start()
    peer.route("POST", "/echo", _echo)
    peer.route("POST", "/deny", _deny)
    first = start_worker(pool, api.url)
    second = None
    try:
        await first.started()
        async with tenant.client() as admin:
            await _setup(admin, peer)
            echo_id = await _publish(admin, echo_graph())

            # The synchronous answer, the execution's detail and its steps.
            response = await admin.post(
                f"/api/v1/workflows/{echo_id}/execute",
                json={"input": {}, "wait": True, "timeout_seconds": 120},
                timeout=150,
            )
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["status"] == "completed", answer
            # The peer did receive the token: the run really used it, and only its exits are masked.
            assert peer.received("POST", "/echo")[-1].headers["authorization"] == f"Bearer {TOKEN}"
            assert answer["output"]["echo"] == {"auth": "Bearer ***", "b64": "***"}
            assert "***" in answer["output"]["error"]
            assert_masked("the execute?wait=true answer", answer)
            run_id = answer["execution_id"]
            detail = (await admin.get(f"/api/v1/executions/{run_id}")).json()
            assert detail["output"]["echo"]["auth"] == "Bearer ***"
            assert_masked("GET /executions/{id}", detail)
            assert_masked("GET /executions/{id}/steps", (await admin.get(f"/api/v1/executions/{run_id}/steps")).json())
            for _ in range(60):  # the worker sends its logs to Prefect in batches
                messages = await _logs(run_id)
                if any("***" in m for m in messages):
                    break
                await asyncio.sleep(0.5)
            assert any("***" in m for m in messages), messages
            assert_masked("the run's logs", messages)

            # A webhook answering with the run's output.
            hooks = (await admin.get("/api/v1/webhooks", params={"workflow_id": echo_id})).json()["items"]
            hooked = await admin.post(hooks[0]["url"], json={"n": 2}, timeout=150)
            assert hooked.status_code == 200, hooked.text
            assert hooked.json()["echo"]["auth"] == "Bearer ***"
            assert_masked("the webhook's after_run answer", hooked.text)

            # A parent whose sub-workflow runs the echo: the sub-workflow's own result and the parent's.
            parent = _graph(
                "parent",
                [
                    _node("start", "trigger.manual", {}),
                    _node("sub", "control.subworkflow", {"workflow": echo_id}),
                    _node("out", "control.output", {"value": "{{ steps.sub }}"}),
                ],
                [("start", "sub"), ("sub", "out")],
            )
            parent_id = await _publish(admin, parent)
            response = await admin.post(
                f"/api/v1/workflows/{parent_id}/execute",
                json={"input": {}, "wait": True, "timeout_seconds": 150},
                timeout=180,
            )
            assert response.status_code == 200, response.text
            assert response.json()["output"]["echo"]["auth"] == "Bearer ***"
            assert_masked("the parent's answer", response.json())
            [child] = await _child_runs(response.json()["execution_id"])
            child_detail = (await admin.get(f"/api/v1/executions/{child.id}")).json()
            assert child_detail["output"]["echo"]["auth"] == "Bearer ***"
            assert_masked("the sub-workflow's result", child_detail)

            # A human task shows the echo; the run resumes on a worker that never loaded the token.
            ask = _graph(
                "ask",
                [
                    _node("start", "trigger.manual", {}),
                    _call("call", "/echo"),
                    _node(
                        "approve",
                        "human.approval",
                        {"title": "Token {{ steps.call.body.auth }}?", "assignees": ["role:admin"]},
                    ),
                    _node("out", "control.output", {"value": "{{ steps.call.body }}"}),
                ],
                [("start", "call"), ("call", "approve"), ("approve", "out")],
            )
            ask_id = await _publish(admin, ask)
            response = await admin.post(f"/api/v1/workflows/{ask_id}/execute", json={"input": {}})
            assert response.status_code == 202, response.text
            asked = response.json()["execution_id"]
            task = await open_task(admin, asked)
            assert task["title"] == "Token Bearer ***?"
            assert_masked("the human task", task)
            await execution_status(admin, asked, "paused")
            first.stop()
            second = start_worker(pool, api.url)
            await second.started()
            decided = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": "approved"})
            assert decided.status_code == 200, decided.text
            resumed = await execution_status(admin, asked, "completed", "failed")
            assert resumed["status"] == "completed", resumed
            assert resumed["output"] == {"auth": "Bearer ***", "b64": "***"}
            assert_masked("the resumed run's result", resumed)
            assert len(peer.received("POST", "/echo")) == 4  # the resumed run did not call again
    finally:
        first.stop()
        if second is not None:
            second.stop()
        peer.stop()
