"""The shared fixtures themselves work: a real Prefect server, PostgreSQL, the HTTP peer."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.peers import PeerResponse


def test_http_peer_records_and_answers(http_peer):
    http_peer.route("POST", "/things", PeerResponse(201, {"id": 7}))
    response = httpx.post(f"{http_peer.url}/things?x=1", json={"a": 1})
    assert response.status_code == 201 and response.json() == {"id": 7}
    [request] = http_peer.received("POST", "/things")
    assert request.json() == {"a": 1}
    assert request.headers["content-type"] == "application/json"


def test_prefect_server_answers(prefect_server):
    assert httpx.get(f"{prefect_server.api_url}/health").json() is True


@pytest.mark.postgres
async def test_postgres_fixture_is_a_dedicated_database(postgres_url):
    """Tests never touch the shared `postgres` database: each session gets its own."""
    name = postgres_url.rsplit("/", 1)[1]
    assert name.startswith("gorax_test_") and name != "postgres"
    conn = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        assert await conn.fetchval("select current_database()") == name
    finally:
        await conn.close()
