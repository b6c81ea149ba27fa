"""Size limits: request bodies (refused while read), graph nodes and edges, variables, inputs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.db.engine import Database
from tests.api.conftest import (
    _SHARED_CONFIG,
    ApiServer,
    ServerThread,
    TenantHandle,
    make_settings,
    new_tenant,
    session_prefect,
)

SMALL = {
    "max_body_bytes": 64 * 1024,
    "webhook_max_body_bytes": 256 * 1024,
    "graph_max_nodes": 5,
    "graph_max_edges": 4,
    "max_variable_bytes": 100,
    "max_input_bytes": 100,
}


@pytest.fixture(scope="module")
def small_api(sqlite_url: str) -> Iterator[ApiServer]:
    """An API whose limits are small enough to pass cheaply."""
    settings = make_settings(sqlite_url, api=_SHARED_CONFIG.model_copy(update=SMALL), prefect=session_prefect())
    app = create_app(settings)
    thread = ServerThread(app).start()
    yield ApiServer(thread.url, sqlite_url, settings, app)
    thread.stop()


@pytest.fixture
async def small_tenant(small_api: ApiServer) -> AsyncIterator[TenantHandle]:
    database = Database(small_api.database_url)
    try:
        yield await new_tenant(database, small_api.url)
    finally:
        await database.dispose()


def _nodes(count: int) -> list[dict[str, Any]]:
    return [{"id": f"n{i}", "type": "data.transform", "config": {"value": i}} for i in range(count)]


def _graph(nodes: int, edges: int = 0) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": "big",
        "nodes": _nodes(nodes),
        "edges": [{"source": "n0", "target": "n1"} for _ in range(edges)],
    }


async def _raw(server: ApiServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = server.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Any]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), headers, json.loads(body)


async def test_a_declared_body_past_the_limit_is_refused_before_it_is_read(
    small_api: ApiServer,
) -> None:
    reader, writer = await _raw(small_api)
    writer.write(
        b"POST /api/v1/workflows HTTP/1.1\r\nHost: gorax\r\n"
        b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n"
    )
    await writer.drain()
    # Not a byte of the 50 MB is sent: the answer comes from the headers alone.
    status, headers, body = await asyncio.wait_for(_read_response(reader), 10)
    writer.close()
    assert status == 413 and headers["connection"] == "close"
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert body["error"]["details"] == {"limit": "max_body_bytes", "max": 65536, "sent": 52428800}
    assert "max_body_bytes" in body["error"]["message"] and headers["x-request-id"]


async def test_a_chunked_body_is_cut_off_at_the_limit(small_api: ApiServer) -> None:
    reader, writer = await _raw(small_api)
    writer.write(
        b"POST /api/v1/workflows HTTP/1.1\r\nHost: gorax\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    # 80 KiB of a body that never ends (no last chunk): the answer cannot wait for its end.
    chunk = b"x" * 16384
    for _ in range(5):
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    await writer.drain()
    status, _, body = await asyncio.wait_for(_read_response(reader), 10)
    writer.close()
    assert status == 413
    details = body["error"]["details"]
    assert details["limit"] == "max_body_bytes" and details["max"] == 65536
    assert 65536 < details["sent"] <= 5 * len(chunk)


async def test_an_honest_body_past_the_limit_gets_413(small_tenant: TenantHandle) -> None:
    async with small_tenant.client() as client:
        response = await client.post("/api/v1/workflows", json={"name": "big", "description": "x" * 70_000})
    assert response.status_code == 413
    assert response.json()["error"]["details"]["limit"] == "max_body_bytes"


async def test_webhook_deliveries_have_their_own_larger_limit(small_api: ApiServer) -> None:
    async with httpx.AsyncClient(base_url=small_api.url, timeout=30) as client:
        # Past the ordinary limit, within the receiver's: the receiver answers (no such hook).
        hook = await client.post("/webhook/unknown-token-0000", content=b"x" * 100_000)
        assert hook.status_code == 404, hook.text
        refused = await client.post("/webhook/unknown-token-0000", content=b"x" * 300_000)
        assert refused.status_code == 413
        assert refused.json()["error"]["details"]["limit"] == "webhook_max_body_bytes"


async def test_graphs_past_the_node_and_edge_limits_are_refused_with_the_limit(
    small_tenant: TenantHandle,
) -> None:
    async with small_tenant.client() as client:
        nodes = await client.post("/api/v1/workflows", json={"name": "w", "graph": _graph(6)})
        assert nodes.status_code == 422
        assert nodes.json()["error"]["details"] == {
            "limit": "graph_max_nodes",
            "max": 5,
            "sent": 6,
            "field": "graph.nodes",
        }
        edges = await client.post("/api/v1/workflows/import", json=_graph(2, edges=5))
        assert edges.status_code == 422
        assert edges.json()["error"]["details"]["limit"] == "graph_max_edges"
        created = await client.post("/api/v1/workflows", json={"name": "w", "graph": _graph(5)})
        assert created.status_code == 201, created.text
        wid, etag = created.json()["id"], created.headers["etag"]
        grown = await client.put(f"/api/v1/workflows/{wid}", json={"graph": _graph(7)}, headers={"If-Match": etag})
        assert grown.status_code == 422 and grown.json()["error"]["details"]["sent"] == 7
        checked = await client.post(f"/api/v1/workflows/{wid}/validate", json={"graph": _graph(6)})
        assert checked.json()["valid"] is False
        assert [(e["code"], e["path"]) for e in checked.json()["errors"]] == [("graph_too_large", "nodes")]
        assert "graph_max_nodes" in checked.json()["errors"][0]["message"]


async def test_graph_text_fields_have_lengths(small_tenant: TenantHandle) -> None:
    graph = {**_graph(1), "description": "d" * 5001}
    async with small_tenant.client() as client:
        created = await client.post("/api/v1/workflows", json={"name": "w"})
        checked = await client.post(f"/api/v1/workflows/{created.json()['id']}/validate", json={"graph": graph})
    assert [(e["code"], e["path"]) for e in checked.json()["errors"] if e["path"] == "description"] == [
        ("invalid_field", "description")
    ]


async def test_default_graph_limit_is_2000_nodes(tenant: TenantHandle) -> None:
    async with tenant.client() as client:
        response = await client.post("/api/v1/workflows", json={"name": "w", "graph": _graph(2001)})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {
        "limit": "graph_max_nodes",
        "max": 2000,
        "sent": 2001,
        "field": "graph.nodes",
    }


async def test_variables_and_inputs_past_their_limits_never_reach_prefect(
    small_tenant: TenantHandle,
) -> None:
    async with small_tenant.client() as client:
        variable = await client.post("/api/v1/variables", json={"name": "big", "value": "v" * 120})
        assert variable.status_code == 413
        assert variable.json()["error"]["details"] == {
            "limit": "max_variable_bytes",
            "max": 100,
            "sent": 122,
            "field": "value",
        }
        replaced = await client.put("/api/v1/variables/big", json={"value": ["v" * 60] * 2})
        assert replaced.status_code == 413
        run = await client.post("/api/v1/workflows/no-such-workflow/execute", json={"input": {"text": "i" * 100}})
        assert run.status_code == 413
        assert run.json()["error"]["details"]["limit"] == "max_input_bytes"
        assert run.json()["error"]["details"]["sent"] == len('{"text":""}') + 100


async def test_a_variable_prefect_cannot_store_is_413_by_default(tenant: TenantHandle) -> None:
    # Prefect keeps at most 5,000 characters of a variable; this one used to end in a 500.
    async with tenant.client() as client:
        response = await client.post("/api/v1/variables", json={"name": "big", "value": "v" * 6000})
    assert response.status_code == 413
    assert response.json()["error"]["details"]["max"] == 4096
