"""Deploying graphs from prefect.yaml and running them on a real worker (deploying from code:
tests/api/prefect/test_deployments.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment
from prefect.states import Cancelling

from api.prefect.deployments import deploy_workflow, schedules_of
from tests.examples import EXAMPLES_DIR
from tests.flows.deploy.conftest import GoraxApi
from tests.peers import PeerResponse
from translator import compile_graph

PROJECT_ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = EXAMPLES_DIR


def _example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


async def _deployment(name: str) -> Any:
    async with get_client() as client:
        return await client.read_deployment_by_name(name)


def _graph_step(entry: dict[str, Any]) -> dict[str, Any]:
    """The inputs of a prefect.yaml deployment's graph build step."""
    [step] = [
        s["flows.deploy_steps.graph_deployment"] for s in entry["build"] if "flows.deploy_steps.graph_deployment" in s
    ]
    return step


def test_prefect_yaml_schedules_agree_with_the_graphs() -> None:
    config = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    for entry in config["deployments"]:
        graph = json.loads((PROJECT_ROOT / _graph_step(entry)["graph"]).read_text())
        wanted = [(s.schedule.cron, s.schedule.timezone, s.parameters) for s in schedules_of(compile_graph(graph))]
        found = [(s["cron"], s.get("timezone", "UTC"), s.get("parameters", {})) for s in entry.get("schedules") or []]
        assert found == wanted, entry["name"]


async def test_deploy_all_run_on_the_worker_and_cancel(gorax_worker: str, gorax_api: GoraxApi, http_peer: Any) -> None:
    """``prefect deploy --all`` works; a deployed graph runs on the worker; cancelling stops nodes.

    The two flow runs go to the worker at once: a process worker needs many seconds per run.
    """
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=PROJECT_ROOT,
        env=gorax_api.deploy_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    health = await _deployment("run-graph/default--service-health")
    assert [s.schedule.cron for s in health.schedules] == ["*/5 * * * *"]
    assert health.work_pool_name == "gorax" and "workflow:service-health" in health.tags
    async with get_client() as client:  # no scheduled runs while the session goes on
        await client.pause_deployment(health.id)
    await asyncio.gather(_runs_deployed_graph(http_peer), _cancels(http_peer))


async def _runs_deployed_graph(http_peer: Any) -> None:
    http_peer.route("GET", "/indicators/x1", PeerResponse(200, {"score": 80}))
    http_peer.route("GET", "/indicators/x2", PeerResponse(200, {"score": 5}))
    flow_run = await run_deployment(
        "run-graph/default--enrich-indicators",
        parameters={"trigger": {"indicators": ["x1", "x2"]}, "env": {"INTEL_URL": http_peer.url}},
        timeout=300,
    )
    assert flow_run.state.is_completed(), flow_run.state
    assert await flow_run.state.result() == {"malicious": ["x1"]}
    assert flow_run.name == "enrich-indicators"


async def _cancels(http_peer: Any) -> None:
    graph = {
        "format": "gorax/graph@1",
        "name": "slow",
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {}},
            {"id": "wait", "type": "control.delay", "config": {"seconds": 300}},
            {"id": "after", "type": "http.request", "config": {"url": f"{http_peer.url}/after"}},
        ],
        "edges": [{"source": "start", "target": "wait"}, {"source": "wait", "target": "after"}],
    }
    async with get_client() as client:
        deployed = await deploy_workflow(client, graph, tenant="acme", workflow_id="slow", work_pool="gorax")
    flow_run = await run_deployment(deployed.full_name, timeout=0)
    async with get_client() as client:
        for _ in range(600):  # until the delay node is running
            runs = await client.read_task_runs(flow_run_filter=_by_id(flow_run.id), limit=10)
            if any(r.name == "wait" and r.state and r.state.is_running() for r in runs):
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail("the delay node never started")
        await client.set_flow_run_state(flow_run.id, Cancelling(), force=True)
        for _ in range(600):
            current = await client.read_flow_run(flow_run.id)
            if current.state.is_final():
                break
            await asyncio.sleep(0.5)
    assert current.state.is_cancelled(), current.state
    assert http_peer.received("GET", "/after") == []


def _by_id(flow_run_id: Any) -> Any:
    return FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
