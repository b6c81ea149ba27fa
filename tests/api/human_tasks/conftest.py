"""Human-task fixtures: one API, Prefect work pool and warm worker for the whole package.

The API and the worker run for every test module of this package (starting them is most of a
module's time); each test makes its own tenant, so tests see only their own tasks.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate

from api.app import create_app
from api.db.engine import Database
from tests.api.conftest import (
    ServerThread,
    TenantHandle,
    api_settings,
    make_settings,
    new_tenant,
    session_prefect,
)
from tests.examples import load_example
from tests.flows.worker.conftest import WorkerProcess
from tests.peers import HttpPeer, PeerResponse, free_port

WORKER_TOKEN = "gxw_human-tasks-" + uuid.uuid4().hex


@pytest.fixture(scope="package")
async def pool(prefect_server: Any) -> str:
    name = f"gorax-ht-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="gorax"))
    return name


@pytest.fixture(scope="package")
def api(pool: str, sqlite_url: str):
    settings = make_settings(
        sqlite_url.replace(".db", "-ht.db"),
        work_pool=pool,
        worker_token=WORKER_TOKEN,
        api=api_settings(rate_limit_api=100_000, rate_limit_execute=100_000),
        prefect=session_prefect(),
    )
    thread = ServerThread(create_app(settings)).start()
    thread.settings = settings  # type: ignore[attr-defined]
    yield thread
    thread.stop()


def start_worker(pool: str, api_url: str) -> WorkerProcess:
    """A warm worker on ``pool`` that records human tasks through the API at ``api_url``."""
    saved = {k: os.environ.get(k) for k in ("GORAX_API_URL", "GORAX_WORKER_TOKEN")}
    os.environ.update({"GORAX_API_URL": api_url, "GORAX_WORKER_TOKEN": WORKER_TOKEN})
    try:
        return WorkerProcess(pool, f"ht-{uuid.uuid4().hex[:6]}").start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="package")
async def worker(pool: str, api: ServerThread):
    process = start_worker(pool, api.url)
    await process.started()
    yield process
    process.stop()


@pytest.fixture(scope="package")
async def database(api: ServerThread):
    db = Database(api.settings.resolved_database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def tenant(database: Database, api: ServerThread) -> TenantHandle:
    return await new_tenant(database, api.url)


@pytest.fixture
def iam():
    peer = HttpPeer().start()
    peer.route("POST", "/grants", PeerResponse(201, {"granted": True}))
    yield peer
    peer.stop()


class Mailbox:
    """A loopback SMTP server that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mailbox.messages.append(envelope)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)


@pytest.fixture
def mailbox():
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()


async def add_smtp_credential(client: httpx.AsyncClient, port: int, name: str = "mail") -> None:
    created = await client.post(
        "/api/v1/credentials",
        json={
            "name": name,
            "type": "smtp-server",
            "values": {"host": "127.0.0.1", "port": port, "security": "none", "from_address": "gorax@example.test"},
        },
    )
    assert created.status_code == 201, created.text


def approval_graph(**approval_changes: Any) -> dict[str, Any]:
    """The shared access-approval example with a counted http.request before the approval."""
    graph = load_example("access-approval")
    graph["name"] = f"access-approval-{uuid.uuid4().hex[:6]}"
    graph["nodes"].insert(
        1,
        {
            "id": "log_request",
            "type": "http.request",
            "position": {"x": 0, "y": 75},
            "config": {"method": "POST", "url": "{{ env.IAM_URL }}/requests", "json": {"user": "{{ trigger.user }}"}},
        },
    )
    for node in graph["nodes"]:
        if node["id"] == "approve":
            node["config"].update(approval_changes)
    graph["edges"][0] = {"source": "request", "target": "log_request"}
    graph["edges"].insert(1, {"source": "log_request", "target": "approve"})
    return graph


async def publish(client: httpx.AsyncClient, graph: dict[str, Any]) -> str:
    """Create and publish ``graph``; the workflow id."""
    response = await client.post("/api/v1/workflows", json={"name": graph["name"], "graph": graph})
    assert response.status_code == 201, response.text
    workflow_id = response.json()["id"]
    response = await client.post(f"/api/v1/workflows/{workflow_id}/publish", json={"message": "v1"})
    assert response.status_code == 201, response.text
    return workflow_id


async def start_run(
    client: httpx.AsyncClient, graph: dict[str, Any], iam_url: str, run_input: dict[str, Any] | None = None
) -> str:
    await client.post("/api/v1/variables", json={"name": "IAM_URL", "value": iam_url})
    workflow_id = await publish(client, graph)
    response = await client.post(
        f"/api/v1/workflows/{workflow_id}/execute", json={"input": run_input or {"user": "ada", "system": "billing"}}
    )
    assert response.status_code == 202, response.text
    return response.json()["execution_id"]


async def wait_for(what: str, probe, timeout: float = 120, interval: float = 0.3) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def open_task(
    client: httpx.AsyncClient, execution_id: str, *, node_id: str | None = None, exclude: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The open task of the run (of ``node_id``; not one of the ``exclude`` ids) once it exists."""

    async def probe() -> Any:
        response = await client.get("/api/v1/human-tasks", params={"status": "open"})
        assert response.status_code == 200, response.text
        return next(
            (
                t
                for t in response.json()["items"]
                if t["execution_id"] == execution_id
                and (node_id is None or t["node_id"] == node_id)
                and t["id"] not in exclude
            ),
            None,
        )

    return await wait_for("the human task", probe)


async def execution_status(client: httpx.AsyncClient, execution_id: str, *wanted: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def probe() -> Any:
        response = await client.get(f"/api/v1/executions/{execution_id}")
        assert response.status_code == 200, response.text
        seen["last"] = response.json()
        return seen["last"] if seen["last"]["status"] in wanted else None

    try:
        return await wait_for(f"execution {execution_id} to be {wanted}", probe, timeout=180)
    except AssertionError as exc:
        last = seen.get("last") or {}
        raise AssertionError(f"{exc}; last seen: {last.get('status')} {last.get('error')}") from None


def steps_by_node(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["node_id"]: step for step in execution["steps"]}


async def audit_events(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def member_client(admin: httpx.AsyncClient, role: str) -> tuple[str, httpx.AsyncClient]:
    """A new member of the admin's tenant with ``role``: their e-mail and a signed-in client."""
    email = f"{role}-{uuid.uuid4().hex[:6]}@people.test"
    password = f"pw-{uuid.uuid4().hex}"
    invited = await admin.post("/api/v1/members/invitations", json={"email": email, "role": role})
    assert invited.status_code == 201, invited.text
    async with httpx.AsyncClient(base_url=str(admin.base_url), timeout=30) as anon:
        joined = await anon.post(
            "/api/v1/auth/invitations/accept", json={"token": invited.json()["token"], "password": password}
        )
        assert joined.status_code == 200, joined.text
        signed_in = await anon.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["access_token"]
    return email, httpx.AsyncClient(
        base_url=str(admin.base_url), timeout=30, headers={"Authorization": f"Bearer {token}"}
    )
