"""Workflow API fixtures: an API per database deploying to its own work pool, a warm worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate

from api.app import create_app
from api.db.engine import Database
from tests.api.conftest import (
    _SHARED_CONFIG,
    ApiServer,
    ServerThread,
    TenantHandle,
    make_settings,
    new_tenant,
)
from tests.flows.worker.conftest import WorkerProcess

MANUAL = {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}}


def graph(name: str, *nodes: dict[str, Any], edges: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A gorax/graph@1 document starting with a manual trigger; edges chain the nodes by default."""
    all_nodes = [MANUAL, *nodes]
    if edges is None:
        edges = [
            {"id": f"e{i}", "source": a["id"], "target": b["id"]}
            for i, (a, b) in enumerate(zip(all_nodes, all_nodes[1:]))
        ]
    return {"format": "gorax/graph@1", "name": name, "nodes": all_nodes, "edges": edges}


def transform(node_id: str, value: Any, **extra: Any) -> dict[str, Any]:
    """A data.transform node."""
    return {
        "id": node_id,
        "type": "data.transform",
        "position": {"x": 0, "y": 100},
        "config": {"value": value},
        **extra,
    }


@pytest.fixture(scope="session")
async def wf_pool(prefect_server: Any) -> str:
    """A work pool of type gorax that only these tests deploy to."""
    name = f"gorax-wf-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="gorax"))
    return name


@pytest.fixture(scope="session")
def wf_servers(wf_pool: str) -> Iterator[dict[str, ApiServer]]:
    """API servers by database URL, started on first use, deploying to ``wf_pool``."""
    servers: dict[str, ApiServer] = {}
    threads: list[ServerThread] = []

    def start(url: str) -> ApiServer:
        if url not in servers:
            settings = make_settings(url, api=_SHARED_CONFIG, work_pool=wf_pool)
            app = create_app(settings)
            threads.append(ServerThread(app).start())
            servers[url] = ApiServer(threads[-1].url, url, settings, app)
        return servers[url]

    yield start  # type: ignore[misc]
    for thread in threads:
        thread.stop()


@pytest.fixture(scope="session")
async def wf_databases() -> AsyncIterator[dict[str, Database]]:
    """Connection pools to the servers' databases, on the test loop."""
    pools: dict[str, Database] = {}
    yield pools
    for database in pools.values():
        await database.dispose()


async def _tenant(servers: Any, databases: dict[str, Database], url: str) -> TenantHandle:
    server = servers(url)
    database = databases.setdefault(url, Database(url))
    return await new_tenant(database, server.url)


@pytest.fixture
async def wf_tenant(wf_servers: Any, wf_databases: dict[str, Database], database_url: str) -> TenantHandle:
    """A fresh tenant on the workflow API of the parametrized database (SQLite, PostgreSQL)."""
    return await _tenant(wf_servers, wf_databases, database_url)


@pytest.fixture
async def wf_other(wf_servers: Any, wf_databases: dict[str, Database], database_url: str) -> TenantHandle:
    """A second tenant on the same server, for isolation checks."""
    return await _tenant(wf_servers, wf_databases, database_url)


@pytest.fixture(scope="session")
async def wf_worker(wf_pool: str) -> AsyncIterator[WorkerProcess]:
    """The warm gorax worker polling ``wf_pool``."""
    process = WorkerProcess(wf_pool, f"wf-{uuid.uuid4().hex[:6]}").start()
    await process.started()
    yield process
    process.stop()


@pytest.fixture
async def run_tenant(
    wf_servers: Any, wf_databases: dict[str, Database], sqlite_url: str, wf_worker: WorkerProcess
) -> TenantHandle:
    """A tenant on the SQLite API with a worker running (execution tests run once)."""
    return await _tenant(wf_servers, wf_databases, sqlite_url)


@pytest.fixture
async def sq_tenant(wf_servers: Any, wf_databases: dict[str, Database], sqlite_url: str) -> TenantHandle:
    """A tenant on the SQLite API, for tests whose database part is covered elsewhere."""
    return await _tenant(wf_servers, wf_databases, sqlite_url)


@pytest.fixture
async def sq_other(wf_servers: Any, wf_databases: dict[str, Database], sqlite_url: str) -> TenantHandle:
    """A second tenant on the SQLite API."""
    return await _tenant(wf_servers, wf_databases, sqlite_url)


async def create(client: httpx.AsyncClient, g: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Create a workflow through the API; returns its JSON."""
    response = await client.post("/api/v1/workflows", json={"name": g["name"], "graph": g, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def publish(client: httpx.AsyncClient, workflow_id: str, message: str = "") -> dict[str, Any]:
    """Publish the draft; returns the version."""
    response = await client.post(f"/api/v1/workflows/{workflow_id}/publish", json={"message": message})
    assert response.status_code == 201, response.text
    return response.json()
