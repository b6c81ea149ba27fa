"""Imported n8n workflows run through Prefect (the session's real server), and placeholders refuse."""

from __future__ import annotations

from typing import Any

import pytest

from flows.importers.n8n import import_n8n
from flows.runtime.steps import read_steps
from tests.flows.graphs.conftest import run, task_runs
from tests.flows.importers.conftest import n8n_file
from tests.peers import PeerResponse


@pytest.fixture(autouse=True)
def _prefect(prefect_server: Any) -> Any:
    return prefect_server


async def test_imported_http_workflow_runs_against_a_local_peer(http_peer: Any) -> None:
    http_peer.route("GET", "/data", PeerResponse(200, {"items": [1, 2, 3]}))
    graph = import_n8n(n8n_file("Simple_workflow_with_http_node.json")).graph
    # n8n's file calls http://mock-api.com; this test's peer is on 127.0.0.1 (the only place tests reach)
    node = next(n for n in graph["nodes"] if n["id"] == "http_request")
    node["config"]["url"] = f"{http_peer.url}/data"
    state, flow_run_id = await run(graph, trigger={})
    assert state.is_completed(), state.message
    result = await state.result()  # the output of the node that ran last
    assert result["status"] == 200 and result["body"] == {"items": [1, 2, 3]}
    received = http_peer.received("GET", "/data")
    assert len(received) == 1 and received[0].path == "/data?test=1"
    runs = {tr.name: tr.state for tr in await task_runs(flow_run_id, 2)}
    assert runs["HTTP Request"].is_completed()


async def test_imported_code_and_if_run_and_route_true() -> None:
    graph = import_n8n(n8n_file("GHC-7313_If_loose_validation.json")).graph
    state, flow_run_id = await run(graph, trigger={})
    assert state.is_completed(), state.message
    steps = {s.node_id: s for s in await read_steps(flow_run_id)}
    assert steps["if"].handles == ["true"]
    assert await state.result() == {"result": True}


async def test_a_graph_with_a_placeholder_refuses_to_run_naming_the_node() -> None:
    graph = import_n8n(n8n_file("AwsS3.file.upload.V2.workflow.json")).graph
    state, _ = await run(graph, trigger={})
    assert state.is_failed()
    assert "move_binary_data" in state.message and "n8n-nodes-base.moveBinaryData" in state.message
