"""Deployments: idempotent, named and described for people, runnable by a worker anywhere."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound

from api.prefect.deployments import WorkPoolMissing, deploy_workflow, readable_name
from tests.conftest import session_dir
from tests.examples import EXAMPLES_DIR

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("api", "blocks", "flows", "translator")

DOUBLER = {
    "format": "gorax/graph@1",
    "name": "doubler",
    "description": "Doubles n.",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {}},
        {"id": "double", "type": "data.transform", "config": {"value": {"doubled": "{{ trigger.n * 2 }}"}}},
    ],
    "edges": [{"source": "start", "target": "double"}],
}


@pytest.fixture
async def prefect(prefect_server: Any) -> AsyncIterator[PrefectClient]:
    async with get_client() as client:
        yield client


async def _pool(client: PrefectClient, kind: str = "process") -> str:
    name = f"deploy-{uuid.uuid4().hex[:8]}"
    await client.create_work_pool(WorkPoolCreate(name=name, type=kind))
    return name


async def test_deploy_is_idempotent_with_tags_queue_schedules_and_no_checkout(prefect: PrefectClient) -> None:
    pool = await _pool(prefect)
    graph = json.loads((EXAMPLES_DIR / "fan-out-join.json").read_text())
    first = await deploy_workflow(
        prefect,
        graph,
        tenant="acme",
        workflow_id="health",
        version=1,
        paused=True,
        work_pool=pool,
        description="Checks the services.",
    )
    assert first.name == "acme--health" and first.full_name == "run-graph/acme--health"
    deployment = await prefect.read_deployment_by_name("run-graph/acme--health")
    assert {"tenant:acme", "workflow:health"} <= set(deployment.tags)
    assert deployment.work_pool_name == pool and deployment.work_queue_name == "tenant-acme"
    assert deployment.parameters["graph"] == graph and deployment.parameters["tenant"] == "acme"
    # The installed module, nothing of the machine that deployed it.
    assert deployment.entrypoint == "flows.run_graph.run_graph"
    assert deployment.path is None and not deployment.pull_steps
    assert deployment.description == "Checks the services."
    [schedule] = deployment.schedules
    assert schedule.schedule.cron == "*/5 * * * *" and schedule.schedule.timezone == "Europe/Berlin"
    assert schedule.parameters == {"trigger_node": "start"}

    changed = copy.deepcopy(graph)
    changed["nodes"][0]["config"] = {"cron": "0 9 * * 1", "timezone": "UTC"}
    again = await deploy_workflow(
        prefect, changed, tenant="acme", workflow_id="health", version=2, paused=True, work_pool=pool
    )
    assert again.deployment_id == first.deployment_id  # updated in place, not duplicated
    deployment = await prefect.read_deployment_by_name("run-graph/acme--health")
    assert [s.schedule.cron for s in deployment.schedules] == ["0 9 * * 1"]
    assert deployment.version == "2" and not deployment.description  # none, not the text "None"


async def test_a_deployment_of_an_earlier_version_loses_its_checkout_path(prefect: PrefectClient) -> None:
    pool = await _pool(prefect)
    flow_id = await prefect.create_flow_from_name("run-graph")
    name = f"default--legacy-{uuid.uuid4().hex[:6]}"
    await prefect.create_deployment(
        flow_id=flow_id,
        name=name,
        work_pool_name=pool,
        entrypoint="flows/run_graph.py:run_graph",
        path="/srv/old-checkout",
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": "/srv/old-checkout"}}],
    )
    deployed = await deploy_workflow(prefect, DOUBLER, workflow_id=name.split("--", 1)[1], work_pool=pool)
    deployment = await prefect.read_deployment(deployed.deployment_id)
    assert deployment.name == name
    assert deployment.path is None and not deployment.pull_steps
    assert deployment.entrypoint == "flows.run_graph.run_graph"


async def test_deploying_never_creates_a_work_pool(prefect: PrefectClient) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(WorkPoolMissing, match=f"work pool '{missing}' does not exist.*gorax setup"):
        await deploy_workflow(prefect, DOUBLER, tenant="acme", workflow_id="nowhere", work_pool=missing)
    with pytest.raises(ObjectNotFound):
        await prefect.read_work_pool(missing)


def test_readable_names_are_unique_per_workflow_and_safe() -> None:
    assert (
        readable_name("acme", "Invoice Approval", "3f2a1c9b-0000-4000-8000-000000000000")
        == "acme--invoice-approval-3f2a1c9b"
    )
    assert readable_name("acme", "Invoice Approval", "77aa0000-0000-4000-8000-000000000000") != readable_name(
        "acme", "Invoice Approval", "3f2a1c9b-0000-4000-8000-000000000000"
    )
    assert readable_name("acme", "!!!", "3f2a1c9b-0000") == "acme--workflow-3f2a1c9b"
    assert len(readable_name("acme", "x" * 500, "3f2a1c9b")) < 90


# -- a worker on another machine ------------------------------------------------------------


def _deploy_from(checkout: Path, graph_file: Path, pool: str, workflow: str) -> None:
    """``gorax deploy`` run from ``checkout`` (the deploying machine's copy of Gorax)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "GORAX_WORK_POOL": pool}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from api.cli import main; sys.exit(main(sys.argv[1:]))",
            "deploy",
            str(graph_file),
            "--tenant",
            "elsewhere",
            "--workflow",
            workflow,
        ],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "api/cli" not in result.stderr


def _start_worker(pool: str, directory: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """A process worker in ``directory``, with nothing of a checkout on its path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PREFECT_WORKER_QUERY_SECONDS"] = "1"
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "worker",
                "start",
                "--pool",
                pool,
                "--type",
                "process",
                "--name",
                f"elsewhere-{uuid.uuid4().hex[:6]}",
            ],
            cwd=directory,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _final(client: PrefectClient, run_id: Any, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = await client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        await asyncio.sleep(0.5)
    raise AssertionError(f"flow run {run_id} did not finish in {timeout}s")


async def test_a_worker_elsewhere_runs_a_workflow_deployed_from_a_checkout_it_does_not_have(
    prefect: PrefectClient, tmp_path: Path
) -> None:
    import blocks.results  # noqa: F401 - registers the serializer the run's result is sealed with

    pool = await _pool(prefect)
    deployer = tmp_path / "deploying-machine"
    for package in PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, deployer / package, ignore=shutil.ignore_patterns("__pycache__"))
    graph_file = tmp_path / "doubler.json"
    graph_file.write_text(json.dumps(DOUBLER))
    workflow = f"doubler-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(_deploy_from, deployer, graph_file, pool, workflow)
    shutil.rmtree(deployer)  # the worker's machine has no such checkout

    deployment = await prefect.read_deployment_by_name(f"run-graph/elsewhere--{workflow}")
    assert deployment.path is None and not deployment.pull_steps
    elsewhere = tmp_path / "worker-machine"
    elsewhere.mkdir()
    worker = _start_worker(pool, elsewhere, session_dir() / f"worker-{pool}.log")
    try:
        run = await prefect.create_flow_run_from_deployment(deployment.id, parameters={"trigger": {"n": 21}})
        final = await _final(prefect, run.id)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    assert final.state.is_completed(), f"{final.state.name}: {final.state.message}"
    assert await final.state.aresult() == {"doubled": 42}
