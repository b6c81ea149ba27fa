"""Step records of runs on the warm worker: complete at the final state, kept across a resume,
with every attempt's error and time."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

from flows.runtime.steps import STEP_ARTIFACT_TYPE, read_steps
from tests.api.human_tasks.conftest import (
    approval_graph,
    execution_status,
    open_task,
    publish,
    start_run,
    steps_by_node,
)
from tests.flows.graphs.conftest import task_runs
from tests.peers import PeerResponse

pytestmark = pytest.mark.timeout(600)

MANUAL = {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}}


def _graph(*nodes: dict[str, Any]) -> dict[str, Any]:
    """A chain from a manual trigger through ``nodes``."""
    chain = [MANUAL, *nodes]
    return {
        "format": "gorax/graph@1",
        "name": f"steps-{uuid.uuid4().hex[:6]}",
        "nodes": chain,
        "edges": [{"source": a["id"], "target": b["id"]} for a, b in zip(chain, chain[1:])],
    }


def _transform(node_id: str, value: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "data.transform", "position": {"x": 0, "y": 100}, "config": {"value": value}}


async def _final_run(run_id: uuid.UUID, timeout: float = 120) -> Any:
    """The flow run at the first sight of its final state (polled tightly)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with get_client() as client:
        while True:
            run = await client.read_flow_run(run_id)
            if run.state is not None and run.state.is_final():
                return run
            assert asyncio.get_running_loop().time() < deadline, f"run {run_id} did not end"
            await asyncio.sleep(0.02)


async def test_steps_are_all_stored_when_the_final_state_is_visible(tenant, worker):
    nodes = [_transform(f"n{i}", i) for i in range(12)]
    async with tenant.client() as admin:
        workflow_id = await publish(admin, _graph(*nodes))
        started = await admin.post(f"/api/v1/workflows/{workflow_id}/execute", json={"input": {}})
        assert started.status_code == 202, started.text
        run_id = uuid.UUID(started.json()["execution_id"])
        run = await _final_run(run_id)
        # Read at once, without waiting: every node's record is there.
        steps = await read_steps(run_id)
        assert run.state.is_completed(), run.state
        assert [s.node_id for s in steps] == ["start"] + [f"n{i}" for i in range(12)]
        # Stored before the run's final state, not after it.
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]),
                    type=ArtifactFilterType(any_=[STEP_ARTIFACT_TYPE]),
                )
            )
        assert artifacts and all(a.created <= run.end_time for a in artifacts), (
            [a.created for a in artifacts],
            run.end_time,
        )
        # The API reads them the same way, at once.
        detail = (await admin.get(f"/api/v1/executions/{run_id}")).json()
        assert len(detail["steps"]) == 13


async def test_a_resumed_run_keeps_the_records_and_task_runs_of_the_nodes_before_it(tenant, worker, iam):
    async with tenant.client() as admin:
        execution_id = await start_run(admin, approval_graph(), iam.url)
        task = await open_task(admin, execution_id)
        await execution_status(admin, execution_id, "paused")
        decided = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": "approved"})
        assert decided.status_code == 200, decided.text
        execution = await execution_status(admin, execution_id, "completed", "failed")
    assert execution["status"] == "completed", execution
    assert len(iam.received("POST", "/requests")) == 1

    # Every record the run stored: one per node, the ones before the approval from its first body.
    records: dict[str, list[Any]] = {}
    for record in await read_steps(execution_id, latest=False):
        records.setdefault(record.node_id, []).append(record)
    assert {node: len(found) for node, found in records.items()} == {
        "request": 1,
        "log_request": 1,
        "approve": 1,
        "grant": 1,
        "explain": 1,
        "done": 1,
    }
    for node in ("request", "log_request", "approve"):
        [record] = records[node]
        assert record.status == "completed" and record.attempts >= 1, record
        assert record.ended_at > record.started_at, record
    [approve] = records["approve"]
    assert [a.status for a in approve.attempt_history] == ["suspended"]
    assert approve.output["decision"] == "approved" and approve.input["title"]
    # The approval's record spans the wait for the decision (the test took well over 0.3 s to decide).
    assert (approve.ended_at - approve.started_at).total_seconds() > 0.3
    assert approve.ended_at <= records["grant"][0].started_at

    # Prefect shows each node's task run once.
    runs = await task_runs(uuid.UUID(execution_id), 6)
    names = Counter(tr.name for tr in runs)
    assert names == Counter(
        {"request": 1, "log_request": 1, "Manager approval": 1, "grant": 1, "explain": 1, "done": 1}
    ), names
    by_name = {tr.name: tr.id for tr in runs}
    assert approve.task_run_id == by_name["Manager approval"]
    assert records["log_request"][0].task_run_id == by_name["log_request"]

    # The API shows the same records.
    steps = steps_by_node(execution)
    assert steps["log_request"]["status"] == "completed" and steps["log_request"]["attempts"] == 1
    assert steps["log_request"]["duration_ms"] > 0
    assert steps["approve"]["status"] == "completed" and steps["approve"]["attempts"] == 1


async def test_every_attempt_keeps_its_error_and_time(tenant, worker, iam):
    answers = iter([PeerResponse(503, {"busy": True}), PeerResponse(503, {"busy": True}), PeerResponse(200, {"ok": 1})])
    iam.route("GET", "/flaky", lambda _req: next(answers))
    call = {
        "id": "call",
        "type": "http.request",
        "position": {"x": 0, "y": 100},
        "config": {"url": f"{iam.url}/flaky"},
        "retry": {"attempts": 3, "delay_seconds": 0},
    }
    async with tenant.client() as admin:
        workflow_id = await publish(admin, _graph(call))
        response = await admin.post(
            f"/api/v1/workflows/{workflow_id}/execute", json={"input": {}, "wait": True, "timeout_seconds": 120}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "completed", response.json()
        execution_id = response.json()["execution_id"]
        detail = (await admin.get(f"/api/v1/executions/{execution_id}")).json()
        listed = (await admin.get(f"/api/v1/executions/{execution_id}/steps")).json()
    assert len(iam.received("GET", "/flaky")) == 3
    step = steps_by_node(detail)["call"]
    assert step["status"] == "completed" and step["attempts"] == 3
    history = step["attempt_history"]
    assert [(a["attempt"], a["status"]) for a in history] == [(1, "failed"), (2, "failed"), (3, "completed")]
    assert all("503" in a["error"] for a in history[:2]) and history[2]["error"] is None
    assert all(a["started_at"] and a["duration_ms"] is not None for a in history)
    assert history[0]["started_at"] < history[1]["started_at"] < history[2]["started_at"]
    assert next(s for s in listed if s["node_id"] == "call")["attempt_history"] == history
    assert steps_by_node(response.json())["call"]["attempt_history"] == history
