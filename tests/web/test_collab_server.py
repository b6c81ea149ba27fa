"""The collaboration server in the real API, driven by two (or more) pycrdt clients."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest
import websockets
from pycrdt import Doc, Map

from api.auth.permissions import Role
from api.collab import read_draft, write_draft
from api.collab.draftlog import DraftLog
from api.collab.graphdoc import apply_graph, doc_to_graph
from api.collab.server import CollabLimits, CollabServer
from api.db.engine import Database
from tests.web.conftest import WebApi
from tests.web.yclient import yclient

GRAPH = {
    "format": "gorax/graph@1",
    "name": "collab",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}},
        {"id": "shape", "type": "data.transform", "position": {"x": 0, "y": 150}, "config": {"value": "{{ trigger }}"}},
    ],
    "edges": [{"source": "start", "target": "shape"}],
}


async def eventually(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Wait until ``check()`` holds (propagation is asynchronous), failing with ``what``."""
    with anyio.move_on_after(timeout):
        while not check():
            await anyio.sleep(0.02)
    assert check(), what


def _wf(web_api: WebApi) -> str:
    """A new workflow of the test tenant (the collaboration socket opens only real workflows)."""
    r = httpx.post(f"{web_api.url}/api/v1/workflows", json={"name": f"collab {uuid.uuid4().hex[:6]}"},
                   headers={"Authorization": f"Bearer {web_api.users['admin'].api_key}"}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _set_config(doc: Doc, node: str, field: str, value: object) -> None:
    nodes = doc.get("nodes", type=Map)
    with doc.transaction():
        nodes[node]["config"][field] = value


async def test_two_editors_converge_and_rest_reads_the_result(web_api: WebApi) -> None:
    wf = _wf(web_api)
    token = web_api.users["editor"].api_key
    async with yclient(web_api.collab_url(wf, token)) as (a, _), yclient(web_api.collab_url(wf, token)) as (b, _):
        apply_graph(a, GRAPH)
        await eventually(lambda: doc_to_graph(b) == GRAPH, "b receives a's graph")
        # Concurrent edits of different fields of one node, and of the graph's name.
        _set_config(a, "shape", "value", "{{ trigger.a }}")
        _set_config(b, "shape", "note", "from b")
        with b.transaction():
            b.get("meta", type=Map)["name"] = "renamed by b"
        await eventually(lambda: doc_to_graph(a) == doc_to_graph(b), "a and b converge")
        merged = doc_to_graph(a)
        assert merged["name"] == "renamed by b"
        assert merged["nodes"][1]["config"] == {"value": "{{ trigger.a }}", "note": "from b"}
        await eventually(lambda: web_api.on_loop(read_draft(wf, tenant_id=web_api.tenant_id)) == merged, "REST sees the merged draft")


async def test_rest_writes_reach_connected_editors(web_api: WebApi) -> None:
    wf = _wf(web_api)
    async with yclient(web_api.collab_url(wf, web_api.users["editor"].api_key)) as (doc, _):
        web_api.on_loop(write_draft(wf, GRAPH, tenant_id=web_api.tenant_id))
        await eventually(lambda: doc_to_graph(doc) == GRAPH, "the editor receives the REST write")
        changed = {**GRAPH, "description": "via REST"}
        web_api.on_loop(write_draft(wf, changed, tenant_id=web_api.tenant_id))
        await eventually(lambda: doc_to_graph(doc).get("description") == "via REST", "second write arrives")


async def test_viewer_reads_but_cannot_change(web_api: WebApi) -> None:
    wf = _wf(web_api)
    async with yclient(web_api.collab_url(wf, web_api.users["editor"].api_key)) as (editor, _), \
            yclient(web_api.collab_url(wf, web_api.users["viewer"].api_key)) as (viewer, _):
        apply_graph(editor, GRAPH)
        await eventually(lambda: doc_to_graph(viewer) == GRAPH, "the viewer receives the graph")
        _set_config(viewer, "shape", "value", "viewer was here")
        with viewer.transaction():
            viewer.get("nodes", type=Map).pop("start")
        # A later editor change still reaches everyone; the viewer's never reaches the server.
        _set_config(editor, "shape", "marker", 1)
        await eventually(lambda: doc_to_graph(viewer)["nodes"][-1]["config"].get("marker") == 1, "editor change arrives")
        server_graph = web_api.on_loop(read_draft(wf, tenant_id=web_api.tenant_id))
        assert server_graph["nodes"][1]["config"]["value"] == "{{ trigger }}"
        assert [n["id"] for n in server_graph["nodes"]] == ["start", "shape"]
        assert doc_to_graph(editor)["nodes"][1]["config"]["value"] == "{{ trigger }}"


@pytest.mark.parametrize("credential", ["none", "garbage", "cookie-from-elsewhere"])
async def test_unauthenticated_connections_are_closed(web_api: WebApi, credential: str) -> None:
    url = web_api.collab_url(uuid.uuid4().hex, {"none": None, "garbage": "gx_nope_nope"}.get(credential))
    headers = {}
    if credential == "cookie-from-elsewhere":
        headers = {"Cookie": "gorax_session=not-a-session", "Origin": "http://evil.test"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code in (4401, 4403)
    assert closed.value.rcvd.reason


async def test_bad_workflow_id_is_refused(web_api: WebApi) -> None:
    async with websockets.connect(web_api.collab_url("bad.id", web_api.users["editor"].api_key)) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 4404


async def test_update_rate_limit_closes_the_connection(web_api: WebApi) -> None:
    server = web_api.collab
    saved = server.limits
    server.limits = CollabLimits(updates_per_second=1, update_burst=3)
    try:
        wf = _wf(web_api)
        async with yclient(web_api.collab_url(wf, web_api.users["editor"].api_key)) as (doc, ws):
            apply_graph(doc, GRAPH)
            for i in range(20):
                _set_config(doc, "shape", "n", i)
                await anyio.sleep(0.01)
            await eventually(lambda: ws.close_code is not None, "the flooding client is cut off")
            assert ws.close_code == 4429
            assert "updates a second" in (ws.close_reason or "")
    finally:
        server.limits = saved


async def test_document_size_limit(web_api: WebApi) -> None:
    server = web_api.collab
    saved = server.limits
    server.limits = CollabLimits(max_document_bytes=20_000)
    try:
        wf = _wf(web_api)
        async with yclient(web_api.collab_url(wf, web_api.users["editor"].api_key)) as (doc, ws):
            apply_graph(doc, GRAPH)
            _set_config(doc, "shape", "blob", "x" * 30_000)
            await eventually(lambda: ws.close_code is not None, "the oversized update is refused")
            assert ws.close_code == 4413
        stored = web_api.on_loop(read_draft(wf, tenant_id=web_api.tenant_id))
        assert stored == GRAPH  # the graph arrived; the oversized change did not
    finally:
        server.limits = saved


async def test_documents_survive_a_restart(web_api: WebApi, sqlite_url: str) -> None:
    """A change queued in a room is stored by shutdown; a new server reads it back from the database."""
    wf = _wf(web_api)
    database = Database(sqlite_url)
    try:
        async with CollabServer(database) as server:
            await server.write(wf, web_api.tenant_id, GRAPH)
            room = await server.room(wf, web_api.tenant_id)
            _set_config(room.doc, "shape", "late", True)  # stored in the background, or on shutdown
        async with CollabServer(database) as again:
            graph = await again.read(wf, web_api.tenant_id)
    finally:
        await database.dispose()
    assert graph["nodes"][1]["config"]["late"] is True
    assert {**graph, "nodes": graph["nodes"][:1]} == {**GRAPH, "nodes": GRAPH["nodes"][:1]}


async def test_a_draft_compacts_and_keeps_every_edit(web_api: WebApi, sqlite_url: str) -> None:
    wf = _wf(web_api)
    database = Database(sqlite_url)
    draft_log = DraftLog(database)
    try:
        async with CollabServer(database, CollabLimits(compact_after=3)) as server:
            room = await server.room(wf, web_api.tenant_id)
            apply_graph(room.doc, GRAPH)
            for i in range(10):
                _set_config(room.doc, "shape", f"k{i}", i)
                await room.flush()
            assert len(await draft_log.load(tenant_id=web_api.tenant_id, workflow_id=wf)) <= 4
        async with CollabServer(database) as again:
            graph = await again.read(wf, web_api.tenant_id)
    finally:
        await database.dispose()
    assert graph["nodes"][1]["config"] == {"value": "{{ trigger }}", **{f"k{i}": i for i in range(10)}}


async def test_a_draft_file_of_an_older_install_is_imported(web_api: WebApi, sqlite_url: str, tmp_path: Path) -> None:
    wf = _wf(web_api)
    old = Doc()
    apply_graph(old, {**GRAPH, "name": "from the file"})
    (tmp_path / f"{wf}.ydoc").write_bytes(old.get_update())
    database = Database(sqlite_url)
    try:
        # Drafts made before the file moved to the database have no rows yet.
        await DraftLog(database).delete(tenant_id=web_api.tenant_id, workflow_id=wf)
        (tmp_path / "not-a-workflow.ydoc").write_bytes(old.get_update())
        async with CollabServer(database, legacy_directory=tmp_path) as server:
            assert (await server.read(wf, web_api.tenant_id)) == {**GRAPH, "name": "from the file"}
        assert (tmp_path / "not-a-workflow.ydoc").exists()
        assert not (tmp_path / f"{wf}.ydoc").exists() and (tmp_path / f"{wf}.ydoc.imported").exists()
        async with CollabServer(database) as again:
            assert (await again.read(wf, web_api.tenant_id))["name"] == "from the file"
    finally:
        await database.dispose()


async def test_rooms_opened_at_once_do_not_deadlock(web_api: WebApi, sqlite_url: str) -> None:
    wf = _wf(web_api)
    database = Database(sqlite_url)
    try:
        async with CollabServer(database) as server:
            rooms = []

            async def open_room() -> None:
                rooms.append(await server.room(wf, web_api.tenant_id))

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    for _ in range(8):
                        tg.start_soon(open_room)
            assert len({id(r) for r in rooms}) == 1
    finally:
        await database.dispose()


async def test_offline_edits_merge_on_reconnect(web_api: WebApi) -> None:
    wf = _wf(web_api)
    token = web_api.users["editor"].api_key
    offline = Doc()
    async with yclient(web_api.collab_url(wf, token)) as (online, _):
        async with yclient(web_api.collab_url(wf, token), offline):
            apply_graph(online, GRAPH)
            await eventually(lambda: doc_to_graph(offline) == GRAPH, "both start from the graph")
        # Disconnected: both sides keep editing.
        _set_config(offline, "shape", "offline", True)
        _set_config(online, "start", "online", True)
        async with yclient(web_api.collab_url(wf, token), offline):
            await eventually(lambda: doc_to_graph(offline) == doc_to_graph(online), "the edits merge")
    merged = doc_to_graph(offline)
    assert merged["nodes"][0]["config"] == {"online": True}
    assert merged["nodes"][1]["config"]["offline"] is True


async def test_unknown_workflow_is_not_found(web_api: WebApi) -> None:
    async with websockets.connect(web_api.collab_url(uuid.uuid4().hex, web_api.users["editor"].api_key)) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 4404


async def test_rollback_makes_the_draft_the_old_version_for_connected_editors(web_api: WebApi) -> None:
    """After a rollback to v1 the draft is v1 (live, for an editor connected meanwhile), so the
    next publish does not bring v2 back; the audit log says which version and who."""
    wf = _wf(web_api)
    admin = {"Authorization": f"Bearer {web_api.users['admin'].api_key}"}
    v1 = {**GRAPH, "name": "rollback"}
    async with httpx.AsyncClient(base_url=f"{web_api.url}/api/v1", headers=admin,
                                 timeout=120) as api:
        async with yclient(web_api.collab_url(wf, web_api.users["editor"].api_key)) as (doc, _):
            apply_graph(doc, v1)
            await eventually(lambda: (web_api.on_loop(_draft(web_api, wf)) or {}).get("name") == "rollback",
                             "the server has v1")
            assert (await api.post(f"/workflows/{wf}/publish", json={"message": "v1"})).status_code == 201
            _set_config(doc, "shape", "value", "{{ trigger.v2 }}")
            await eventually(lambda: web_api.on_loop(_draft(web_api, wf))["nodes"][1]["config"]["value"] == "{{ trigger.v2 }}",
                             "the server has v2")
            assert (await api.post(f"/workflows/{wf}/publish", json={"message": "v2"})).status_code == 201

            rolled = await api.post(f"/workflows/{wf}/versions/1/rollback")
            assert rolled.status_code == 201, rolled.text
            assert rolled.json()["number"] == 3 and rolled.json()["graph"] == v1
            await eventually(lambda: doc_to_graph(doc) == v1, "the connected editor sees v1")
        assert (await api.get(f"/workflows/{wf}")).json()["graph"] == v1
        again = await api.post(f"/workflows/{wf}/publish", json={"message": "after the rollback"})
        assert again.status_code == 201 and again.json()["graph"] == v1

        audit = (await api.get("/audit", params={"action": "workflow.draft_restore"})).json()
        [entry] = [e for e in audit["items"] if e["resource_id"] == wf]
        assert entry["details"]["version"] == 1 and entry["details"]["changed"] is True
        assert "published as version 3" in entry["details"]["reason"]
        assert f"{entry['actor_type']}:{entry['actor_id']}" == rolled.json()["author"]


async def _draft(web_api: WebApi, workflow_id: str) -> dict | None:
    return await read_draft(workflow_id, tenant_id=web_api.tenant_id)


async def test_without_an_authorizer_no_draft_opens(sqlite_url: str) -> None:
    """An app whose collaboration server got no authorizer from create_app refuses every draft,
    even of a workflow the principal's tenant owns: it never opens what nothing checked."""
    from api.app import create_app
    from api.db.engine import Database
    from tests.api.conftest import ServerThread, make_settings, new_tenant

    url = sqlite_url.replace(".db", "-noauth.db")
    app = create_app(make_settings(url))
    app.state.collab_hooks = None  # as an app assembled without create_app's wiring
    thread = ServerThread(app).start()
    database = Database(url)
    try:
        tenant = await new_tenant(database, thread.url)
        async with tenant.client() as client:
            created = await client.post("/api/v1/workflows", json={"name": "mine"})
            assert created.status_code == 201, created.text
        collab = thread.url.replace("http://", "ws://") + f"/api/v1/workflows/{created.json()['id']}/collab"
        async with websockets.connect(f"{collab}?token={tenant.keys[Role.EDITOR]}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        assert "cannot check workflows" in closed.value.rcvd.reason
    finally:
        thread.stop()
        await database.dispose()
