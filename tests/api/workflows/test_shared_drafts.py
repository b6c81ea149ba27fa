"""Drafts shared by API replicas: two APIs on one PostgreSQL database and one Redis, each with a
state directory of its own, edited over their collaboration sockets and REST."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
import websockets
from pycrdt import Doc, Map

from api.app import create_app
from api.auth.permissions import Role
from api.collab.draftlog import DraftLog
from api.collab.graphdoc import doc_to_graph
from api.db.engine import Database
from tests.api.conftest import _SHARED_CONFIG, ApiServer, ServerThread, TenantHandle, make_settings, new_tenant
from tests.api.workflows.conftest import graph, transform
from tests.web.yclient import yclient

REDIS_URL = "redis://127.0.0.1:6379/0"
API = "/api/v1"


class Replicas:
    """API replicas on one database and Redis; ``start()`` adds one, ``stop(i)`` ends one."""

    def __init__(self, database_url: str, work_pool: str) -> None:
        self.database_url = database_url
        self.work_pool = work_pool
        self.threads: list[ServerThread | None] = []
        self.servers: list[ApiServer] = []

    def start(self) -> ApiServer:
        settings = make_settings(
            self.database_url, work_pool=self.work_pool, api=_SHARED_CONFIG.model_copy(update={"redis_url": REDIS_URL})
        )
        app = create_app(settings)
        thread = ServerThread(app).start()
        self.threads.append(thread)
        self.servers.append(ApiServer(thread.url, self.database_url, settings, app))
        return self.servers[-1]

    def stop(self, index: int) -> None:
        thread = self.threads[index]
        if thread is not None:
            thread.stop()
            self.threads[index] = None

    def stop_all(self) -> None:
        for index in range(len(self.threads)):
            self.stop(index)


@pytest.fixture(scope="module")
def replicas(postgres_url: str, wf_pool: str) -> Iterator[Replicas]:
    group = Replicas(postgres_url, wf_pool)
    group.start()
    group.start()
    yield group
    group.stop_all()


@pytest.fixture
async def tenant(replicas: Replicas) -> AsyncIterator[TenantHandle]:
    database = Database(replicas.database_url)
    try:
        yield await new_tenant(database, replicas.servers[0].url)
    finally:
        await database.dispose()


def collab_url(server: ApiServer, workflow_id: str, token: str) -> str:
    return server.url.replace("http://", "ws://") + f"{API}/workflows/{workflow_id}/collab?token={token}"


def client(tenant: TenantHandle, server: ApiServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url + API, timeout=60, headers={"Authorization": f"Bearer {tenant.keys[Role.ADMIN]}"}
    )


async def eventually(check: Callable[[], Any], what: str, timeout: float) -> float:
    """Wait until ``check()`` (sync or async) holds; the seconds it took, or fail with ``what``."""
    started = time.monotonic()
    with anyio.move_on_after(timeout):
        while True:
            result = check()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return time.monotonic() - started
            await anyio.sleep(0.02)
    raise AssertionError(f"{what} (not within {timeout} s)")


async def rest_graph(api: httpx.AsyncClient, workflow_id: str) -> dict[str, Any]:
    response = await api.get(f"/workflows/{workflow_id}")
    assert response.status_code == 200, response.text
    return response.json()["graph"]


async def new_workflow(api: httpx.AsyncClient, name: str) -> str:
    created = await api.post("/workflows", json={"name": name, "graph": graph(name, transform("shape", 1))})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def set_config(doc: Doc, node: str, field: str, value: Any) -> None:
    with doc.transaction():
        doc.get("nodes", type=Map)[node]["config"][field] = value


async def test_an_editor_on_one_replica_is_seen_on_the_other_within_two_seconds(
    replicas: Replicas, tenant: TenantHandle
) -> None:
    one, two = replicas.servers[:2]
    token = tenant.keys[Role.EDITOR]
    async with client(tenant, one) as api_one, client(tenant, two) as api_two:
        wf = await new_workflow(api_one, "live")
        async with (
            yclient(collab_url(one, wf, token)) as (editor_one, _),
            yclient(collab_url(two, wf, token)) as (editor_two, _),
        ):
            set_config(editor_one, "shape", "value", "typed on one")
            took = await eventually(
                lambda: doc_to_graph(editor_two)["nodes"][1]["config"]["value"] == "typed on one",
                "the editor on replica two receives the edit",
                2,
            )
            assert took < 2
            took = await eventually(
                lambda: _rest_value(api_two, wf, "typed on one"), "replica two's REST read has the edit", 2
            )
            assert took < 2
            # And back: what replica two's editor types reaches replica one's editor.
            set_config(editor_two, "shape", "note", "typed on two")
            await eventually(
                lambda: doc_to_graph(editor_one)["nodes"][1]["config"].get("note") == "typed on two",
                "the editor on replica one receives the edit",
                2,
            )


async def _rest_value(api: httpx.AsyncClient, workflow_id: str, value: str) -> bool:
    return (await rest_graph(api, workflow_id))["nodes"][1]["config"]["value"] == value


async def test_a_rest_edit_on_one_replica_is_what_the_other_publishes(replicas: Replicas, tenant: TenantHandle) -> None:
    one, two = replicas.servers[:2]
    token = tenant.keys[Role.EDITOR]
    async with client(tenant, one) as api_one, client(tenant, two) as api_two:
        wf = await new_workflow(api_one, "publish")
        async with yclient(collab_url(one, wf, token)) as (editor_one, _):
            # Replica one has the room open; the REST edit goes through replica two.
            read = await api_two.get(f"/workflows/{wf}")
            edited = graph("publish", transform("shape", "edited over REST on two"))
            put = await api_two.put(
                f"/workflows/{wf}", json={"graph": edited}, headers={"If-Match": read.headers["ETag"]}
            )
            assert put.status_code == 200, put.text
            published = await api_one.post(f"/workflows/{wf}/publish", json={"message": "from one"})
            assert published.status_code == 201, published.text
            assert published.json()["graph"] == edited
            await eventually(lambda: doc_to_graph(editor_one) == edited, "replica one's editor has the REST edit", 2)

        # What an editor on replica two just typed is what replica one publishes.
        async with yclient(collab_url(two, wf, token)) as (editor_two, _):
            set_config(editor_two, "shape", "value", "typed on two")
            await eventually(lambda: _rest_value(api_one, wf, "typed on two"), "replica one reads the typing", 2)
            published = await api_one.post(f"/workflows/{wf}/publish", json={"message": "typed"})
            assert published.status_code == 201, published.text
            assert published.json()["graph"]["nodes"][1]["config"]["value"] == "typed on two"


async def test_concurrent_edits_on_both_replicas_converge_and_none_is_lost(
    replicas: Replicas, tenant: TenantHandle
) -> None:
    one, two = replicas.servers[:2]
    token = tenant.keys[Role.EDITOR]
    async with client(tenant, one) as api_one, client(tenant, two) as api_two:
        wf = await new_workflow(api_one, "concurrent")
        async with yclient(collab_url(one, wf, token)) as (a, _), yclient(collab_url(two, wf, token)) as (b, _):

            async def add_nodes(doc: Doc, prefix: str) -> None:
                for i in range(25):
                    with doc.transaction():
                        nodes = doc.get("nodes", type=Map)
                        nodes[f"{prefix}{i}"] = Map(
                            {"type": "data.transform", "__i": 10 + i, "config": Map({"value": i})}
                        )
                        nodes["shape"]["config"][f"{prefix}{i}"] = i  # one node, both replicas
                    await anyio.sleep(0.005)

            async with anyio.create_task_group() as tg:
                tg.start_soon(add_nodes, a, "a")
                tg.start_soon(add_nodes, b, "b")
            await eventually(lambda: doc_to_graph(a) == doc_to_graph(b), "the two editors converge", 5)
            merged = doc_to_graph(a)
            ids = {node["id"] for node in merged["nodes"]}
            assert {f"{p}{i}" for p in "ab" for i in range(25)} <= ids
            shape = next(node for node in merged["nodes"] if node["id"] == "shape")
            assert {f"{p}{i}" for p in "ab" for i in range(25)} <= set(shape["config"])
            for api in (api_one, api_two):
                await eventually(lambda api=api: _same_rest(api, wf, merged), "REST on both replicas has it all", 5)


async def _same_rest(api: httpx.AsyncClient, workflow_id: str, expected: dict[str, Any]) -> bool:
    return await rest_graph(api, workflow_id) == expected


async def test_a_restarted_replica_loads_the_latest_draft(replicas: Replicas, tenant: TenantHandle) -> None:
    """A replica stopped right after its editor typed stores the edit; a replica started anew
    (with a state directory of its own) serves it over REST and to a new editor."""
    doomed = replicas.start()
    token = tenant.keys[Role.EDITOR]
    async with client(tenant, doomed) as api:
        wf = await new_workflow(api, "restart")
    async with yclient(collab_url(doomed, wf, token)) as (editor, _):
        set_config(editor, "shape", "value", "last words")
        await anyio.sleep(0.3)  # the socket delivers it; storing is the server's job from here
    replicas.stop(len(replicas.servers) - 1)
    fresh = replicas.start()
    async with client(tenant, fresh) as api:
        assert (await rest_graph(api, wf))["nodes"][1]["config"]["value"] == "last words"
    async with yclient(collab_url(fresh, wf, token)) as (reader, _):
        assert doc_to_graph(reader)["nodes"][1]["config"]["value"] == "last words"
    replicas.stop(len(replicas.servers) - 1)


async def test_an_update_the_relay_missed_arrives_after_it_reconnects(replicas: Replicas, tenant: TenantHandle) -> None:
    """An update stored while the relay did not carry it (a replica's publish failed, or Redis
    dropped the subscription) reaches the editors once the subscription is back."""
    one, two = replicas.servers[:2]
    async with client(tenant, one) as api_one:
        wf = await new_workflow(api_one, "missed")
    database = Database(replicas.database_url)
    try:
        async with yclient(collab_url(two, wf, tenant.keys[Role.EDITOR])) as (editor, _):
            # Stored behind the relay's back, as by a replica whose publish failed.
            draft_log = DraftLog(database)
            doc = Doc()
            for update in await draft_log.load(tenant_id=tenant.id, workflow_id=wf):
                doc.apply_update(update)
            before = doc.get_state()
            set_config(doc, "shape", "value", "missed by the relay")
            await draft_log.append(tenant_id=tenant.id, workflow_id=wf, update=doc.get_update(before))
            await anyio.sleep(0.5)
            assert doc_to_graph(editor)["nodes"][1]["config"]["value"] == 1  # nothing carried it

            collab = two.app.state.collab  # type: ignore[attr-defined]
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(collab.relay._pubsub.connection.disconnect(), collab.loop)
            )
            await eventually(
                lambda: doc_to_graph(editor)["nodes"][1]["config"]["value"] == "missed by the relay",
                "the editor gets the missed update after the reconnect",
                10,
            )
    finally:
        await database.dispose()


async def test_drafts_are_isolated_between_tenants(replicas: Replicas, tenant: TenantHandle) -> None:
    """Another tenant can neither read the draft nor open its room, on either replica."""
    one, two = replicas.servers[:2]
    database = Database(replicas.database_url)
    try:
        other = await new_tenant(database, one.url)
    finally:
        await database.dispose()
    async with client(tenant, one) as api_one:
        wf = await new_workflow(api_one, "private")
    for server in (one, two):
        async with client(other, server) as api_other:
            assert (await api_other.get(f"/workflows/{wf}")).status_code == 404
        async with websockets.connect(collab_url(server, wf, other.keys[Role.EDITOR])) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


def test_replicas_keep_no_draft_files(replicas: Replicas) -> None:
    """Drafts are in the database: no replica's state directory holds a draft file."""
    for server in replicas.servers:
        collab = server.settings.state_dir / "collab"
        assert not collab.exists() or not any(collab.iterdir())
