"""``prefect deploy`` from a CI checkout: the deployment carries the graph and its tenant's id.

The checkout is a copy of the project's ``prefect.yaml`` and ``deployments/`` in a directory of
its own, removed before the run: what runs is what was deployed, never a file beside the worker.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from flows.deploy_steps import DeployStepError, graph_deployment, resolve_tenant
from flows.settings import get_settings
from tests.flows.deploy.conftest import GoraxApi
from tests.flows.worker.conftest import WorkerProcess, create_pool
from tests.peers import PeerResponse

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ENRICH = "run-graph/default--enrich-indicators"
STEP = "flows.deploy_steps.graph_deployment"


def _checkout(root: Path, pool: str, *, tenant: str = "default") -> Path:
    """A CI checkout of the project (prefect.yaml, graphs, flow code), deploying to ``pool`` for ``tenant``."""
    root.mkdir(parents=True)
    for part in ("deployments", "flows"):
        shutil.copytree(PROJECT_ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    for entry in config["deployments"]:
        entry["work_pool"]["name"] = pool
        for step in entry.get("build") or []:
            if STEP in step:
                step[STEP]["tenant"] = tenant
    (root / "prefect.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


async def _prefect_deploy(checkout: Path, api: GoraxApi, *names: str) -> subprocess.CompletedProcess[str]:
    selection = [arg for name in names for arg in ("--name", name)] or ["--all"]
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", *selection],
        cwd=checkout,
        env=api.deploy_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
async def warm_pool(prefect_server: Any) -> AsyncIterator[str]:
    """A pool of type gorax with a warm worker whose working directory is the project root."""
    pool = await create_pool("gorax")
    worker = WorkerProcess(pool, f"ci-{uuid.uuid4().hex[:6]}").start()
    await worker.started()
    yield pool
    worker.stop()


async def test_a_run_executes_the_deployed_graph_after_the_checkout_is_gone(
    warm_pool: str, gorax_api: GoraxApi, http_peer: Any, tmp_path: Path
) -> None:
    checkout = _checkout(tmp_path / "checkout", warm_pool)
    # The commit CI deploys changed the graph: the worker's own copy of the file is older.
    path = checkout / "deployments" / "loop-over-items.json"
    graph = json.loads(path.read_text())
    done = next(node for node in graph["nodes"] if node["id"] == "done")
    done["config"]["value"]["deployed_from"] = "checkout"
    path.write_text(json.dumps(graph))

    result = await _prefect_deploy(checkout, gorax_api, "default--enrich-indicators")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    shutil.rmtree(checkout)

    http_peer.route("GET", "/indicators/x1", PeerResponse(200, {"score": 80}))
    http_peer.route("GET", "/indicators/x2", PeerResponse(200, {"score": 5}))
    flow_run = await run_deployment(
        ENRICH,
        parameters={"trigger": {"indicators": ["x1", "x2"]}, "env": {"INTEL_URL": http_peer.url}},
        timeout=180,
    )
    assert flow_run.state.is_completed(), flow_run.state
    assert await flow_run.state.result() == {"malicious": ["x1"], "deployed_from": "checkout"}

    # The tenant was given by its slug; the deployment and its runs carry the tenant's id, so the
    # Gorax API lists the run for that tenant.
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(ENRICH)
    assert deployment.parameters["tenant"] == gorax_api.tenant_id
    assert f"tenant:{gorax_api.tenant_id}" in deployment.tags
    assert deployment.work_queue_name == f"tenant-{gorax_api.tenant_id}"
    assert deployment.pull_steps == [] and deployment.entrypoint == "flows.run_graph.run_graph"
    async with httpx.AsyncClient(
        base_url=gorax_api.url, timeout=30, headers={"Authorization": f"Bearer {gorax_api.api_key}"}
    ) as api:
        response = await api.get(f"/api/v1/executions/{flow_run.id}")
    assert response.status_code == 200, response.text


async def test_an_unknown_tenant_is_refused_at_deploy_time(warm_pool: str, gorax_api: GoraxApi, tmp_path: Path) -> None:
    checkout = _checkout(tmp_path / "checkout", warm_pool, tenant="no-such-tenant")
    config = yaml.safe_load((checkout / "prefect.yaml").read_text())
    name = f"refused-{uuid.uuid4().hex[:6]}"
    config["deployments"][1]["name"] = name
    (checkout / "prefect.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    result = await _prefect_deploy(checkout, gorax_api, name)
    assert result.returncode != 0
    assert "tenant 'no-such-tenant' is not the tenant of GORAX_API_KEY" in result.stdout + result.stderr
    async with get_client() as client:
        with pytest.raises(ObjectNotFound):
            await client.read_deployment_by_name(f"run-graph/{name}")


def test_the_tenant_is_a_slug_or_an_id_of_the_key(gorax_api: GoraxApi) -> None:
    by_slug = resolve_tenant("default", api_url=gorax_api.url, api_key=gorax_api.api_key)
    by_id = resolve_tenant(gorax_api.tenant_id, api_url=gorax_api.url, api_key=gorax_api.api_key)
    assert by_slug == by_id == {"id": gorax_api.tenant_id, "slug": "default"}
    with pytest.raises(DeployStepError, match="set GORAX_API_KEY"):
        resolve_tenant("default", api_url=gorax_api.url, api_key=None)
    with pytest.raises(DeployStepError, match="answered 401"):
        resolve_tenant("default", api_url=gorax_api.url, api_key="gx_not_a_key")


def test_an_invalid_graph_is_refused_naming_node_and_field(
    gorax_api: GoraxApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = json.loads((PROJECT_ROOT / "deployments" / "loop-over-items.json").read_text())
    graph["nodes"][2]["config"]["method"] = "FETCH"
    (tmp_path / "broken.json").write_text(json.dumps(graph))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DeployStepError, match=r"broken.json: node 'lookup' config.method"):
        graph_deployment("broken.json", "default", api_url=gorax_api.url, api_key=gorax_api.api_key)
    with pytest.raises(DeployStepError, match="graph file 'missing.json' not found"):
        graph_deployment("missing.json", "default", api_url=gorax_api.url, api_key=gorax_api.api_key)


def test_without_an_api_address_the_step_says_which_setting_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(PROJECT_ROOT / "deployments" / "loop-over-items.json", tmp_path / "graph.json")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GORAX_API_URL", raising=False)
    get_settings.cache_clear()
    try:
        with pytest.raises(DeployStepError, match="set GORAX_API_URL"):
            graph_deployment("graph.json", "default", api_key="gx_unused")
    finally:
        get_settings.cache_clear()
