"""Leak scan: run a workflow that uses seeded secrets, then search everything it left behind.

One secret goes out in a header (http-auth credential), one in a URL (a template), one ends up
in an ``http.request`` error that is logged. Afterwards no plaintext value (nor its base64 form)
may appear in the Prefect database file, any file under the test session directory (Prefect's
home, results, server log), the process's own log output, or any Prefect API response about the
run and the credentials.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
from prefect.logging.handlers import APILogHandler

from blocks import service
from flows.run_graph import run_graph
from flows.runtime.tasks import run_node
from tests.blocks.conftest import Tenant
from tests.conftest import session_dir
from tests.peers import HttpPeer, PeerResponse

HEADER_SECRET = "leak-header-7f3a9c1e"
URL_SECRET = "leak-url-2b8d4e6f"
ERROR_SECRET = "leak-error-9a1c5e3b"
SECRETS = (HEADER_SECRET, URL_SECRET, ERROR_SECRET)


def _runtime_seals_results() -> bool:
    serializers = (run_node.result_serializer, run_graph.result_serializer)
    return all(getattr(s, "type", s) == "gorax-sealed-json" for s in serializers)


def _needles() -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for secret in SECRETS:
        found[secret.encode()] = secret
        found[base64.b64encode(secret.encode()).rstrip(b"=")] = f"base64 of {secret}"
    return found


def _hits(data: bytes, where: str) -> list[str]:
    return [f"{label} in {where}" for needle, label in _needles().items() if needle in data]


def _graph(peer: HttpPeer) -> dict:
    return {
        "format": "gorax/graph@1",
        "name": "leak-scan",
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {}},
            {"id": "by_header", "type": "http.request", "config": {"url": f"{peer.url}/echo", "credential": "api"}},
            {
                "id": "by_url",
                "type": "http.request",
                "config": {"url": f"{peer.url}/echo?key={{{{ credentials.urlkey.api_key }}}}"},
            },
            {
                "id": "by_error",
                "type": "http.request",
                "on_error": "continue",
                "config": {"url": f"{peer.url}/fail?token={{{{ credentials.errkey.api_key }}}}"},
            },
        ],
        "edges": [
            {"source": "start", "target": "by_header"},
            {"source": "start", "target": "by_url"},
            {"source": "start", "target": "by_error"},
        ],
    }


async def _api_texts(api_url: str, flow_run_id: str) -> dict[str, str]:
    """Raw Prefect API responses about the run and the stored credentials."""
    run_filter = {"flow_runs": {"id": {"any_": [flow_run_id]}}}
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        responses = {
            "flow run": await client.get(f"/flow_runs/{flow_run_id}"),
            "task runs": await client.post("/task_runs/filter", json=run_filter),
            "logs": await client.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}}),
            "artifacts": await client.post("/artifacts/filter", json=run_filter),
            "block documents": await client.post("/block_documents/filter", json={"include_secrets": True}),
            "variables": await client.post("/variables/filter", json={}),
            "events": await client.post("/events/filter", json={"limit": 50}),
        }
    for name, response in responses.items():
        assert response.status_code == 200, (name, response.text[:300])
    return {name: response.text for name, response in responses.items()}


def test_runtime_persists_sealed_results() -> None:
    assert _runtime_seals_results()


async def test_no_secret_left_anywhere(prefect_server, tenant: Tenant, http_peer: HttpPeer, capfd) -> None:
    http_peer.route("GET", "/echo", lambda req: PeerResponse(200, {"saw": dict(req.headers), "path": req.path}))
    # The failure answer echoes the request, so the node's error message carries the secret.
    http_peer.route("GET", "/fail", lambda req: PeerResponse(500, f"cannot serve {req.path}"))
    await service.create_credential("api", "http-auth", {"token": HEADER_SECRET}, **tenant.kw)
    await service.create_credential("urlkey", "http-auth", {"scheme": "api_key", "api_key": URL_SECRET}, **tenant.kw)
    await service.create_credential("errkey", "http-auth", {"scheme": "api_key", "api_key": ERROR_SECRET}, **tenant.kw)

    state = await run_graph(graph=_graph(http_peer), tenant=tenant.id, return_state=True)
    flow_run_id = str(state.state_details.flow_run_id)
    assert state.is_completed(), state.message

    # The secrets really were used: the peer saw the header and the URL parameter.
    seen = http_peer.received("GET", "/echo")
    assert any(r.headers.get("authorization") == f"Bearer {HEADER_SECRET}" for r in seen)
    assert any(f"key={URL_SECRET}" in r.path for r in seen)
    assert any(ERROR_SECRET in r.path for r in http_peer.received("GET", "/fail"))

    await APILogHandler.aflush()
    await asyncio.sleep(2)  # task run states and artifacts reach the server as events

    hits: list[str] = []
    for name, text in (await _api_texts(prefect_server.api_url, flow_run_id)).items():
        hits += _hits(text.encode(), f"Prefect API response: {name}")
    for path in Path(session_dir()).rglob("*"):
        if path.is_file():
            hits += _hits(path.read_bytes(), str(path))
    out, err = capfd.readouterr()
    hits += _hits(out.encode(), "stdout") + _hits(err.encode(), "stderr")
    assert hits == [], "\n".join(hits)
    # The error was logged, masked.
    logs = (await _api_texts(prefect_server.api_url, flow_run_id))["logs"]
    assert "/fail?token=*** answered 500" in logs
