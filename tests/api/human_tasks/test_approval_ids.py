"""Approval nodes whose ids hold '_' and digits suspend and resume.

Prefect takes only lowercase letters, digits and '-' in the key a run suspends with; the
validator accepts node ids of lowercase letters, digits and '_' (never '-' or '.'). Every such
id must go through a real suspend and resume. Keys of loop iterations are checked in
``tests/flows/runtime/test_approval_keys.py``: an approval inside a loop body cannot suspend yet
(see the expected failure below).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api.human_tasks.conftest import execution_status, open_task, publish, steps_by_node

pytestmark = pytest.mark.timeout(600)


def _approval(node_id: str, title: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "human.approval",
        "position": {"x": 0, "y": 0},
        "config": {"title": title, "assignees": ["role:admin"]},
        **extra,
    }


def _graph(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    start = {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}}
    return {
        "format": "gorax/graph@1",
        "name": f"approval-ids-{uuid.uuid4().hex[:6]}",
        "nodes": [start, *nodes],
        "edges": edges,
    }


async def _run(admin: Any, graph: dict[str, Any]) -> str:
    workflow_id = await publish(admin, graph)
    started = await admin.post(f"/api/v1/workflows/{workflow_id}/execute", json={"input": {}})
    assert started.status_code == 202, started.text
    return started.json()["execution_id"]


async def _decide_in_turn(admin: Any, execution_id: str, turns: list[tuple[str, str, str]]) -> None:
    decided: list[str] = []
    for node_id, title, value in turns:
        task = await open_task(admin, execution_id, node_id=node_id, exclude=tuple(decided))
        assert task["title"] == title
        paused = await execution_status(admin, execution_id, "paused", "failed", "crashed")
        assert paused["status"] == "paused", paused
        response = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": value})
        assert response.status_code == 200, response.text
        decided.append(task["id"])


async def test_ids_with_underscores_and_digits_suspend_and_resume(tenant, worker):
    graph = _graph(
        [
            _approval("check_2_b", "Check"),
            _approval("sign_off_1", "Sign off"),
            {
                "id": "done",
                "type": "control.output",
                "position": {"x": 0, "y": 0},
                "config": {
                    "value": {"check": "{{ steps.check_2_b.decision }}", "final": "{{ steps.sign_off_1.decision }}"}
                },
            },
        ],
        [
            {"source": "start", "target": "check_2_b"},
            {"source": "check_2_b", "sourceHandle": "rejected", "target": "sign_off_1"},
            {"source": "sign_off_1", "sourceHandle": "approved", "target": "done"},
        ],
    )
    async with tenant.client() as admin:
        execution_id = await _run(admin, graph)
        await _decide_in_turn(
            admin, execution_id, [("check_2_b", "Check", "rejected"), ("sign_off_1", "Sign off", "approved")]
        )
        execution = await execution_status(admin, execution_id, "completed", "failed")
    assert execution["status"] == "completed", execution
    assert execution["output"] == {"check": "rejected", "final": "approved"}
    assert steps_by_node(execution)["sign_off_1"]["output"]["decision"] == "approved"


@pytest.mark.xfail(
    strict=True,
    reason="an approval in a loop body runs inside the loop node's "
    "Prefect task, and Prefect cannot suspend a flow run from a task run",
)
async def test_approval_in_a_loop_body_suspends_per_iteration(tenant, worker):
    graph = _graph(
        [
            {
                "id": "each_2",
                "type": "control.loop",
                "position": {"x": 0, "y": 0},
                "config": {"mode": "foreach", "items": ["x", "y"]},
            },
            _approval("check_2_b", "Check {{ loop.item }}", parentId="each_2"),
        ],
        [{"source": "start", "target": "each_2"}],
    )
    async with tenant.client() as admin:
        execution_id = await _run(admin, graph)
        await _decide_in_turn(
            admin, execution_id, [("check_2_b", "Check x", "approved"), ("check_2_b", "Check y", "rejected")]
        )
        execution = await execution_status(admin, execution_id, "completed", "failed")
    assert execution["status"] == "completed", execution
