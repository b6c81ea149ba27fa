"""Human approval end to end: a real API, Prefect server and warm worker; runs suspend and resume.

Every run has an ``http.request`` node before the approval, counted by a loopback peer: it must
run exactly once although the flow body starts again after each resume.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth.permissions import Role
from api.config import ApiConfig
from api.db.engine import Database
from tests.api.conftest import ServerThread, TenantHandle, make_settings, new_tenant
from tests.flows.worker.conftest import WorkerProcess
from tests.examples import load_example
from tests.peers import HttpPeer, PeerResponse, free_port

WORKER_TOKEN = "gxw_human-tasks-" + uuid.uuid4().hex
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
async def pool(prefect_server: Any) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"gorax-ht-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="gorax"))
    return name


@pytest.fixture(scope="module")
def api(pool: str, sqlite_url: str):
    settings = make_settings(sqlite_url.replace(".db", "-ht.db"), work_pool=pool,
                             prefect_api_url=os.environ["PREFECT_API_URL"])
    config = ApiConfig(worker_token=WORKER_TOKEN, rate_limit_api=100_000, rate_limit_execute=100_000)
    thread = ServerThread(create_app(settings, config)).start()
    thread.settings = settings  # type: ignore[attr-defined]
    yield thread
    thread.stop()


def _worker(pool: str, api_url: str) -> WorkerProcess:
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


@pytest.fixture(scope="module")
async def worker(pool: str, api: ServerThread):
    process = _worker(pool, api.url)
    await process.started()
    yield process
    process.stop()


@pytest.fixture(scope="module")
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


def approval_graph(**approval_changes: Any) -> dict[str, Any]:
    """The shared access-approval example with a counted http.request before the approval."""
    graph = load_example("access-approval")
    graph["name"] = f"access-approval-{uuid.uuid4().hex[:6]}"
    graph["nodes"].insert(1, {
        "id": "log_request", "type": "http.request", "position": {"x": 0, "y": 75},
        "config": {"method": "POST", "url": "{{ env.IAM_URL }}/requests",
                   "json": {"user": "{{ trigger.user }}"}},
    })
    for node in graph["nodes"]:
        if node["id"] == "approve":
            node["config"].update(approval_changes)
    graph["edges"][0] = {"source": "request", "target": "log_request"}
    graph["edges"].insert(1, {"source": "log_request", "target": "approve"})
    return graph


async def start_run(client: httpx.AsyncClient, graph: dict[str, Any], iam_url: str) -> str:
    await client.post("/api/v1/variables", json={"name": "IAM_URL", "value": iam_url})
    response = await client.post("/api/v1/workflows", json={"name": graph["name"], "graph": graph})
    assert response.status_code == 201, response.text
    workflow_id = response.json()["id"]
    response = await client.post(f"/api/v1/workflows/{workflow_id}/publish", json={"message": "v1"})
    assert response.status_code == 201, response.text
    response = await client.post(f"/api/v1/workflows/{workflow_id}/execute",
                                 json={"input": {"user": "ada", "system": "billing"}})
    assert response.status_code == 202, response.text
    return response.json()["execution_id"]


async def wait_for(what: str, probe, timeout: float = 120) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def open_task(client: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    async def probe() -> Any:
        response = await client.get("/api/v1/human-tasks", params={"status": "open"})
        assert response.status_code == 200, response.text
        return next((t for t in response.json()["items"] if t["execution_id"] == execution_id), None)

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


@pytest.mark.parametrize("choice, branch, other", [("approved", "grant", "explain"),
                                                   ("rejected", "explain", "grant")])
async def test_decision_resumes_the_run_on_its_branch(tenant, worker, iam, choice, branch, other):
    async with tenant.client() as admin, tenant.client(Role.OPERATOR) as operator:
        execution_id = await start_run(admin, approval_graph(), iam.url)
        task = await open_task(admin, execution_id)
        assert task["title"] == "Grant ada access to billing?"
        assert task["data"]["trigger"] == {"user": "ada", "system": "billing"}
        await execution_status(admin, execution_id, "paused")

        # Operators are not assignees of role:admin; the decision is the admin's, once.
        denied = await operator.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": choice})
        assert denied.status_code == 403, denied.text
        bad = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": "maybe"})
        assert bad.status_code == 422 and "maybe" in bad.json()["error"]["message"]
        decided = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide",
                                   json={"value": choice, "comment": "ok by me"})
        assert decided.status_code == 200, decided.text
        assert decided.json()["status"] == "decided"
        again = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": choice})
        assert again.status_code == 409

        execution = await execution_status(admin, execution_id, "completed", "failed")
        assert execution["status"] == "completed", execution
        assert execution["output"] == {"decision": choice}
        steps = steps_by_node(execution)
        assert steps[branch]["status"] == "completed"
        assert steps[other]["status"] == "skipped"
        assert steps["approve"]["output"]["decision"] == choice
        assert steps["approve"]["output"]["comment"] == "ok by me"

        audit = await admin.get("/api/v1/audit", params={"action": "human_task.decide"})
        [entry] = [e for e in audit.json()["items"] if e["resource_id"] == task["id"]]
        assert entry["details"]["data"]["trigger"]["user"] == "ada"
    assert len(iam.received("POST", "/requests")) == 1
    grants = iam.received("POST", "/grants")
    assert len(grants) == (1 if choice == "approved" else 0)
    if grants:
        assert grants[0].json()["approved_by"]


async def test_worker_restart_while_suspended(tenant, pool, api, iam):
    first = _worker(pool, api.url)
    await first.started()
    async with tenant.client() as admin:
        execution_id = await start_run(admin, approval_graph(), iam.url)
        task = await open_task(admin, execution_id)
        await execution_status(admin, execution_id, "paused")
        first.stop()
        second = _worker(pool, api.url)
        try:
            await second.started()
            response = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide",
                                        json={"value": "approved"})
            assert response.status_code == 200, response.text
            execution = await execution_status(admin, execution_id, "completed", "failed")
        finally:
            second.stop()
    assert execution["status"] == "completed" and execution["output"] == {"decision": "approved"}
    assert len(iam.received("POST", "/requests")) == 1
    assert len(iam.received("POST", "/grants")) == 1


class _Mailbox:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mailbox.messages.append(envelope)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)


async def test_escalation_then_automatic_decision(tenant, worker, api, iam):
    mailbox = _Mailbox()
    mailbox.controller.start()
    try:
        async with tenant.client() as admin:
            created = await admin.post("/api/v1/credentials", json={
                "name": "mail", "type": "smtp-server",
                "values": {"host": "127.0.0.1", "port": mailbox.port, "security": "none",
                           "from_address": "gorax@example.test"}})
            assert created.status_code == 201, created.text
            graph = approval_graph(
                escalation=[{"after": "1s", "notify": [tenant.email]}, {"after": "2s", "decide": "rejected"}],
                channels=["inbox", "email"], email_credential="mail",
            )
            execution_id = await start_run(admin, graph, iam.url)
            task = await open_task(admin, execution_id)
            await execution_status(admin, execution_id, "paused")
            await asyncio.sleep(2.2)
            async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                         headers={"Authorization": f"Bearer {WORKER_TOKEN}"}) as internal:
                swept = await internal.post("/api/v1/internal/maintenance/human-tasks")
            assert swept.status_code == 200, swept.text
            counts = swept.json()
            assert counts["escalated"] == 1 and counts["auto_decided"] == 1
            execution = await execution_status(admin, execution_id, "completed", "failed")
            detail = (await admin.get(f"/api/v1/human-tasks/{task['id']}")).json()
    finally:
        mailbox.controller.stop()
    assert execution["output"] == {"decision": "rejected"}
    assert detail["decided_by"] == "system:timeout" and detail["status"] == "decided"
    reasons = [n["reason"] for n in detail["notifications"]]
    assert reasons == ["assigned", "escalation"]
    # Assignment went to the admins (role:admin), the escalation to the named address; each
    # mail carries a signed link that leads to the decision page.
    recipients = [sorted(m.rcpt_tos) for m in mailbox.messages]
    assert [tenant.email] in recipients and len(recipients) == 2
    from email import message_from_bytes, policy

    body = message_from_bytes(mailbox.messages[-1].content, policy=policy.default).get_content()
    link = body[body.index("http"):].split()[0]
    # The link carries the API's public URL; follow its path on the test server.
    link = api.url + link[link.index("/api/v1/"):]
    async with httpx.AsyncClient() as client:
        followed = await client.get(link, follow_redirects=False)
        forged = await client.get(link[:-4] + "0000", follow_redirects=False)
    assert followed.status_code == 302 and followed.headers["location"].endswith(task["id"])
    assert forged.status_code == 404
    assert len(iam.received("POST", "/requests")) == 1


async def test_cancelling_the_run_cancels_its_task(tenant, worker, iam):
    async with tenant.client() as admin:
        execution_id = await start_run(admin, approval_graph(), iam.url)
        task = await open_task(admin, execution_id)
        await execution_status(admin, execution_id, "paused")
        response = await admin.post(f"/api/v1/executions/{execution_id}/cancel")
        assert response.status_code == 200, response.text
        detail = (await admin.get(f"/api/v1/human-tasks/{task['id']}")).json()
        assert detail["status"] == "cancelled"
        late = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": "approved"})
        assert late.status_code == 409


async def test_other_tenants_see_nothing(tenant, database, api, worker, iam):
    other = await new_tenant(database, api.url)
    async with tenant.client() as admin, other.client() as stranger:
        execution_id = await start_run(admin, approval_graph(), iam.url)
        task = await open_task(admin, execution_id)
        assert (await stranger.get(f"/api/v1/human-tasks/{task['id']}")).status_code == 404
        assert (await stranger.post(f"/api/v1/human-tasks/{task['id']}/decide",
                                    json={"value": "approved"})).status_code == 404
        assert (await stranger.get("/api/v1/human-tasks")).json()["items"] == []
        await admin.post(f"/api/v1/executions/{execution_id}/cancel")
