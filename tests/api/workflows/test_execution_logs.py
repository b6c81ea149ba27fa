"""A run's logs through the API: paged reads and the live WebSocket, against the real Prefect
server (log streaming on) and a warm gorax worker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import websockets

from api.auth.permissions import Role
from api.services import run_logs
from tests.api.conftest import TenantHandle
from tests.api.workflows.conftest import create, graph, publish, transform
from tests.peers import HttpPeer, PeerResponse, RecordedRequest

API = "/api/v1"
TOKEN = f"tok-{uuid.uuid4().hex}"
FINAL = {"completed", "failed", "crashed", "cancelled", "timed_out"}


def _deny(request: RecordedRequest) -> PeerResponse:
    return PeerResponse(400, {"error": f"bad token {request.headers.get('authorization')}"})


def _talking_graph() -> dict[str, Any]:
    """Logs at the start, waits, then a call whose error quotes the credential (logged as an error)."""
    return graph(
        f"talker-{uuid.uuid4().hex[:6]}",
        transform("talk", {"said": "hello"}),
        {"id": "nap", "type": "control.delay", "position": {"x": 0, "y": 150}, "config": {"seconds": 4}},
        {
            "id": "deny",
            "type": "http.request",
            "position": {"x": 0, "y": 200},
            "config": {"method": "POST", "url": "{{ env.PEER_URL }}/deny", "credential": "peer_token", "json": {}},
            "on_error": "continue",
        },
        transform("after", 1),
    )


async def _start(client: httpx.AsyncClient, peer: HttpPeer) -> str:
    response = await client.post(
        f"{API}/credentials",
        json={"name": "peer_token", "type": "http-auth", "values": {"scheme": "bearer", "token": TOKEN}},
    )
    assert response.status_code == 201, response.text
    response = await client.post(f"{API}/variables", json={"name": "PEER_URL", "value": peer.url})
    assert response.status_code in (200, 201), response.text
    wid = (await create(client, _talking_graph()))["id"]
    await publish(client, wid)
    response = await client.post(f"{API}/workflows/{wid}/execute", json={"input": {}})
    assert response.status_code == 202, response.text
    return str(response.json()["execution_id"])


def _ws(tenant: TenantHandle, execution_id: str, query: str = "", role: Role = Role.VIEWER) -> str:
    base = tenant.base_url.replace("http://", "ws://")
    return f"{base}{API}/executions/{execution_id}/logs/stream?token={tenant.keys[role]}{query}"


async def _read_all(url: str, on_first_line: Any = None) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    async with websockets.connect(url) as ws:
        async with asyncio.timeout(120):
            async for raw in ws:
                message = json.loads(raw)
                messages.append(message)
                if message["type"] == "line" and on_first_line is not None:
                    await on_first_line()
                    on_first_line = None
                if message["type"] == "end":
                    break
    return messages


async def _stored(client: httpx.AsyncClient, execution_id: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await client.get(
            f"{API}/executions/{execution_id}/logs",
            params={**params, "limit": 7, **({"cursor": cursor} if cursor else {})},
        )
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


def _assert_masked(lines: list[dict[str, Any]]) -> None:
    text = json.dumps(lines)
    assert TOKEN not in text
    assert any("***" in line["message"] for line in lines), [line["message"] for line in lines]


async def test_live_logs_stream_while_running_then_end(run_tenant: TenantHandle, sq_other: TenantHandle) -> None:
    peer = HttpPeer().start()
    peer.route("POST", "/deny", _deny)
    try:
        async with run_tenant.client() as client:
            execution_id = await _start(client, peer)
            status_at_first_line: list[str] = []
            late: list[asyncio.Task[list[dict[str, Any]]]] = []

            async def first_line() -> None:
                body = (await client.get(f"{API}/executions/{execution_id}")).json()
                status_at_first_line.append(body["status"])
                # A second reader joining mid-run gets the backlog, then the rest live.
                late.append(asyncio.create_task(_read_all(_ws(run_tenant, execution_id))))

            started = time.monotonic()
            messages = await _read_all(_ws(run_tenant, execution_id), first_line)
            elapsed = time.monotonic() - started
            joined = await late[0]
            stored = await _stored(client, execution_id)

            # Another tenant sees neither the socket nor the page.
            async with websockets.connect(_ws(sq_other, execution_id, role=Role.ADMIN)) as ws:
                try:
                    await asyncio.wait_for(ws.recv(), 30)
                    raise AssertionError("another tenant received log lines")
                except websockets.ConnectionClosed as exc:
                    assert exc.rcvd is not None and exc.rcvd.code == 4404
            async with sq_other.client() as other:
                assert (await other.get(f"{API}/executions/{execution_id}/logs")).status_code == 404
    finally:
        peer.stop()

    assert status_at_first_line and status_at_first_line[0] not in FINAL, status_at_first_line
    assert messages[-1] == {"type": "end", "status": "completed"}
    lines = [m for m in messages if m["type"] == "line"]
    ids = [line["id"] for line in lines]
    assert len(ids) == len(set(ids)), "a line was sent twice"
    assert {line["node_id"] for line in lines} >= {"talk", "nap", "deny"}, [
        (line["node_id"], line["logger"], line["message"][:60]) for line in lines
    ]
    assert any(line["node_id"] is None for line in lines), "the run's own lines"
    assert {line["level"] for line in lines} >= {"info", "error"}
    _assert_masked(lines)
    # The stream (backlog + live) holds exactly what Prefect stored, for both readers.
    assert sorted(ids) == sorted(line["id"] for line in stored)
    joined_ids = [m["id"] for m in joined if m["type"] == "line"]
    assert len(joined_ids) == len(set(joined_ids)) and sorted(joined_ids) == sorted(ids)
    assert joined[-1] == {"type": "end", "status": "completed"}
    _assert_masked(stored)
    assert elapsed < 60


async def test_log_filters_on_the_page_and_the_socket(run_tenant: TenantHandle, monkeypatch: Any) -> None:
    peer = HttpPeer().start()
    peer.route("POST", "/deny", _deny)
    try:
        async with run_tenant.client() as client:
            execution_id = await _start(client, peer)
            warnings = await _read_all(_ws(run_tenant, execution_id, "&level=warning"))
            everything = await _stored(client, execution_id)
            # The run has ended "long ago" from here on: sockets get the store and the end at once.
            monkeypatch.setattr(run_logs, "DRAIN_MAX_SECONDS", 0.0)
            started = time.monotonic()
            talk = await _read_all(_ws(run_tenant, execution_id, "&node=talk"))
            searched = await _read_all(_ws(run_tenant, execution_id, "&q=BAD%20TOKEN"))
            quick = time.monotonic() - started
            page_warnings = await _stored(client, execution_id, level="warning")
            page_search = await _stored(client, execution_id, q="bad token", node="deny")
            bad = await client.get(f"{API}/executions/{execution_id}/logs", params={"level": "loud"})
            async with websockets.connect(_ws(run_tenant, execution_id, "&level=loud")) as ws:
                try:
                    await asyncio.wait_for(ws.recv(), 10)
                    raise AssertionError("a bad level was accepted")
                except websockets.ConnectionClosed as exc:
                    assert exc.rcvd is not None and exc.rcvd.code == 4400 and "loud" in exc.rcvd.reason
    finally:
        peer.stop()

    warning_lines = [m for m in warnings if m["type"] == "line"]
    assert warning_lines and {m["level"] for m in warning_lines} <= {"warning", "error", "critical"}
    assert warnings[-1]["type"] == "end"
    assert sorted(m["id"] for m in warning_lines) == sorted(
        line["id"] for line in everything if line["level"] in ("warning", "error", "critical")
    )
    assert sorted(m["id"] for m in page_warnings) == sorted(m["id"] for m in warning_lines)
    talk_lines = [m for m in talk if m["type"] == "line"]
    assert talk_lines and {m["node_id"] for m in talk_lines} == {"talk"}
    searched_lines = [m for m in searched if m["type"] == "line"]
    assert searched_lines and all("bad token" in m["message"].lower() for m in searched_lines)
    assert [m["id"] for m in page_search] == [m["id"] for m in searched_lines if m["node_id"] == "deny"]
    _assert_masked(searched_lines)
    assert talk[-1] == searched[-1] == {"type": "end", "status": "completed"}
    assert quick < 2 * run_logs.DRAIN_QUIET_SECONDS, "an ended run's sockets waited for a drain"
    assert bad.status_code == 400 and "level" in bad.text and "loud" in bad.text
