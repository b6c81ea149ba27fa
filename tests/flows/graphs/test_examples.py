"""The shared examples run with loopback peers and give the right outputs and task runs."""

from __future__ import annotations

import json
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

from flows.runtime.steps import read_steps
from tests.flows.graphs.conftest import example, run, task_runs
from tests.peers import PeerResponse


async def test_loop_over_items(http_peer) -> None:
    scores = {"a": 10, "b": 90, "c": 75, "d": 1, "e": 99}
    for indicator, score in scores.items():
        http_peer.route("GET", f"/indicators/{indicator}", PeerResponse(200, {"score": score}))
    state, flow_run_id = await run(
        example("loop-over-items"), trigger={"indicators": list(scores)}, env={"INTEL_URL": http_peer.url}
    )
    assert state.is_completed(), state.message
    assert await state.result() == {"malicious": ["b", "c", "e"]}
    expected = ["alert", "bad", "done", "each"] + [f"{n} [{i}]" for n in ("lookup", "verdict") for i in range(5)]
    names = sorted(tr.name for tr in await task_runs(flow_run_id, len(expected)))
    assert names == sorted(expected)
    steps = await read_steps(flow_run_id)
    assert {s.name for s in steps} == set(expected)
    lookup0 = next(s for s in steps if s.name == "lookup [0]")
    assert lookup0.status == "completed" and lookup0.iteration == [0] and lookup0.attempts == 1
    assert lookup0.output["body"] == {"score": 10}
    assert lookup0.input["url"] == f"{http_peer.url}/indicators/a"
    assert await _tables(flow_run_id) == []  # everything went to plan: no summary table


async def test_fan_out_join(http_peer) -> None:
    http_peer.route("GET", "/db/health", PeerResponse(503, {"down": True}))
    graph = example("fan-out-join")
    env = {"API_URL": f"{http_peer.url}/api", "DB_URL": f"{http_peer.url}/db", "QUEUE_URL": f"{http_peer.url}/queue"}
    state, flow_run_id = await run(graph, env=env, trigger_node="start")
    assert state.is_completed(), state.message
    assert await state.result() == {"healthy": 2}
    runs = {tr.name: tr for tr in await task_runs(flow_run_id, 7)}
    assert set(runs) == {"start", "api", "db", "queue", "all", "summary", "done"}
    assert runs["db"].state.is_failed()  # on_error: continue
    assert runs["done"].state.is_completed()
    steps = {s.node_id: s for s in await read_steps(flow_run_id)}
    assert steps["db"].status == "failed" and "503" in steps["db"].error["message"]
    assert steps["all"].output["db"]["error"]["node_id"] == "db"
    [summary] = await _tables(flow_run_id)  # the run's step table in the Prefect UI
    rows = {row["node"]: row for row in json.loads(summary.data)}
    assert rows["db"]["status"] == "failed" and rows["summary"]["status"] == "completed"


async def _tables(flow_run_id: Any) -> list[Any]:
    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), type=ArtifactFilterType(any_=["table"])
            )
        )
