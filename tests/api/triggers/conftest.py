"""Trigger test fixtures: an API per database on its own work pool, a worker, signing helpers."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.db.engine import Database
from api.webhooks.signatures import SignatureConfig, sign
from tests.api.conftest import _SHARED_CONFIG, ApiServer, ServerThread, TenantHandle, make_settings, new_tenant
from tests.flows.worker.conftest import WorkerProcess
from tests.peers import HttpPeer


def api_client(tenant: TenantHandle, role: str = "admin") -> httpx.AsyncClient:
    """A client of the tenant with a timeout for a loaded machine (publishing deploys)."""
    return httpx.AsyncClient(
        base_url=tenant.base_url, timeout=180, headers={"Authorization": f"Bearer {tenant.keys[role]}"}
    )  # type: ignore[index]


def hook(node_id: str, signature: dict[str, Any], **config: Any) -> dict[str, Any]:
    """A trigger.webhook node."""
    return {
        "id": node_id,
        "type": "trigger.webhook",
        "position": {"x": 0, "y": 0},
        "config": {"signature": signature, **config},
    }


def output(value: Any = "{{ trigger.body }}") -> dict[str, Any]:
    """A control.output node."""
    return {"id": "out", "type": "control.output", "position": {"x": 0, "y": 200}, "config": {"value": value}}


def graph(name: str, triggers: list[dict[str, Any]], *rest: dict[str, Any]) -> dict[str, Any]:
    """Triggers all feeding an output node."""
    nodes = [*triggers, *(rest or (output(),))]
    edges = [{"id": f"e{i}", "source": t["id"], "target": "out"} for i, t in enumerate(triggers)]
    return {"format": "gorax/graph@1", "name": name, "nodes": nodes, "edges": edges}


def signed(
    scheme: dict[str, Any], body: bytes, secret: str, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """Headers a sender using ``scheme`` would send."""
    config = SignatureConfig.from_config(scheme)
    headers = sign(config, body, secret, msg_id=msg_id or uuid.uuid4().hex, timestamp=timestamp)
    headers["Content-Type"] = "application/json"
    return headers


def stripe_body(**fields: Any) -> bytes:
    """A Stripe-like event body (its ``id`` is the delivery id)."""
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "test", **fields}).encode()


async def add_secret(
    client: httpx.AsyncClient, name: str, value: str, type_: str = "webhook-secret", field: str | None = None
) -> None:
    """Store a credential through the API (a webhook secret as a list of one)."""
    values = {field: value} if field else {"secrets": [value]}
    response = await client.post("/api/v1/credentials", json={"name": name, "type": type_, "values": values})
    assert response.status_code == 201, response.text


async def publish_new(client: httpx.AsyncClient, g: dict[str, Any]) -> str:
    """Create and publish a workflow; returns its id."""
    response = await client.post("/api/v1/workflows", json={"name": g["name"], "graph": g})
    assert response.status_code == 201, response.text
    workflow_id = response.json()["id"]
    response = await client.post(f"/api/v1/workflows/{workflow_id}/publish", json={})
    assert response.status_code == 201, response.text
    return workflow_id


async def webhook_urls(client: httpx.AsyncClient, workflow_id: str) -> dict[str, dict[str, Any]]:
    """The workflow's webhooks by node id."""
    response = await client.get("/api/v1/webhooks", params={"workflow_id": workflow_id})
    assert response.status_code == 200, response.text
    return {w["node_id"]: w for w in response.json()["items"]}


async def flow_runs(workflow_id: str) -> list[Any]:
    """The Prefect flow runs of a workflow."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"workflow:{workflow_id}"])), limit=200
        )


async def eventually(check: Any, timeout: float = 60, interval: float = 0.5) -> Any:
    """Poll the async ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


@pytest.fixture(scope="session")
async def tr_pool(prefect_server: Any) -> str:
    """A work pool only the trigger tests deploy to."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"gorax-tr-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="gorax"))
    return name


@pytest.fixture(scope="session")
def tr_servers(tr_pool: str) -> Iterator[Any]:
    """API servers by database URL, started on first use, deploying to ``tr_pool``."""
    servers: dict[str, ApiServer] = {}
    threads: list[ServerThread] = []

    def start(url: str) -> ApiServer:
        if url not in servers:
            settings = make_settings(url, api=_SHARED_CONFIG, work_pool=tr_pool)
            app = create_app(settings)
            threads.append(ServerThread(app).start())
            servers[url] = ApiServer(threads[-1].url, url, settings, app)
        return servers[url]

    yield start
    for thread in threads:
        thread.stop()


@pytest.fixture(scope="session")
async def tr_databases() -> AsyncIterator[dict[str, Database]]:
    """Connection pools to the servers' databases."""
    pools: dict[str, Database] = {}
    yield pools
    for database in pools.values():
        await database.dispose()


async def _tenant(servers: Any, databases: dict[str, Database], url: str) -> TenantHandle:
    server = servers(url)
    database = databases.setdefault(url, Database(url))
    return await new_tenant(database, server.url)


@pytest.fixture
async def tr_tenant(tr_servers: Any, tr_databases: dict[str, Database], database_url: str) -> TenantHandle:
    """A fresh tenant on the trigger API of the parametrized database."""
    return await _tenant(tr_servers, tr_databases, database_url)


@pytest.fixture(scope="session")
def chat_peer() -> Iterator[HttpPeer]:
    """A loopback Slack-compatible peer for the worker's runs."""
    peer = HttpPeer().start()
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
async def tr_worker(tr_pool: str, chat_peer: HttpPeer) -> AsyncIterator[WorkerProcess]:
    """A worker on ``tr_pool`` whose Slack calls go to ``chat_peer``."""
    previous = os.environ.get("GORAX_SLACK_API_URL")
    os.environ["GORAX_SLACK_API_URL"] = f"{chat_peer.url}/api/"
    try:
        process = WorkerProcess(tr_pool, f"tr-{uuid.uuid4().hex[:6]}").start()
    finally:
        if previous is None:
            os.environ.pop("GORAX_SLACK_API_URL", None)
        else:
            os.environ["GORAX_SLACK_API_URL"] = previous
    await process.started(deadline=600)  # a loaded machine starts workers slowly
    yield process
    process.stop()


@pytest.fixture
async def run_tenant(
    tr_servers: Any, tr_databases: dict[str, Database], sqlite_url: str, tr_worker: WorkerProcess
) -> TenantHandle:
    """A tenant on the SQLite trigger API with the worker running."""
    return await _tenant(tr_servers, tr_databases, sqlite_url)
