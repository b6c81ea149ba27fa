"""Traces and error tracking end to end: a real API and a real warm worker export spans to an
OTLP/HTTP receiver on 127.0.0.1 and send errors to a receiver posing as Sentry's envelope
endpoint; the test reads what arrived.

One API (in this process) and one worker (a subprocess) for the module, both configured by
the standard variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``SENTRY_DSN``).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from starlette.routing import Mount

from api.app import create_app
from api.db.engine import Database
from blocks.redact import register_secret
from flows import tracing
from tests.api.conftest import ServerThread, TenantHandle, api_settings, make_settings, new_tenant, session_prefect
from tests.api.triggers.conftest import flow_runs
from tests.flows.worker.conftest import WorkerProcess
from tests.peers import HttpPeer, PeerResponse

pytestmark = pytest.mark.timeout(900)  # a deploy and a worker on a loaded machine

TOKEN = f"tok-{uuid.uuid4().hex}"


# -- Receivers ------------------------------------------------------------------------------


def _spans(peer: HttpPeer) -> list[dict[str, Any]]:
    """Every span the OTLP receiver got, flattened with its service name."""
    spans = []
    for request in peer.received("POST", "/v1/traces"):
        body = request.body
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        {
                            "service": resource.get("service.name"),
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "kind": span.kind,
                            "attributes": {a.key: _value(a.value) for a in span.attributes},
                        }
                    )
    return spans


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def _envelope_items(peer: HttpPeer) -> list[dict[str, Any]]:
    """The event items every envelope the Sentry receiver got holds (decompressed, parsed)."""
    items = []
    for request in peer.received("POST"):
        body = request.body
        encoding = request.headers.get("content-encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli  # noqa: PLC0415 - only when the SDK chose it

            body = brotli.decompress(body)
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event" and payload.strip():
                items.append(json.loads(payload))
    return items


def _raw_envelopes(peer: HttpPeer) -> str:
    return "\n".join(json.dumps(item) for item in _envelope_items(peer))


async def _eventually(check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen in {timeout}s (last: {result!r})")
        await asyncio.sleep(0.3)


# -- Fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[HttpPeer, HttpPeer, HttpPeer]]:
    """The OTLP receiver, the Sentry receiver, and the peer a node calls."""
    otlp, sentry, target = HttpPeer().start(), HttpPeer().start(), HttpPeer().start()
    sentry.route("POST", "/api/1/envelope/", PeerResponse(200, {"id": uuid.uuid4().hex}))
    yield otlp, sentry, target
    for peer in (otlp, sentry, target):
        peer.stop()


def _telemetry_env(otlp: HttpPeer, sentry: HttpPeer) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "SENTRY_DSN": f"http://publickey@127.0.0.1:{sentry.url.rsplit(':', 1)[1]}/1",
    }


@pytest.fixture(scope="module")
async def traced(
    prefect_server: Any, sqlite_url: str, receivers: tuple[HttpPeer, HttpPeer, HttpPeer]
) -> AsyncIterator[tuple[ServerThread, Database]]:
    """An API and a worker with traces and Sentry on, on a work pool of their own."""
    otlp, sentry, _ = receivers
    pool = f"gorax-otel-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=pool, type="gorax"))
    env = _telemetry_env(otlp, sentry)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = make_settings(
            sqlite_url.replace(".db", "-otel.db"),
            work_pool=pool,
            api=api_settings(rate_limit_api=100_000, rate_limit_execute=100_000),
            prefect=session_prefect(),
        )
        app = create_app(settings)

        async def boom() -> None:
            raise RuntimeError(f"the upstream refused token {TOKEN}")

        # An endpoint that fails unexpectedly (every real one handles its errors), before the
        # web app's catch-all mount.
        app.add_api_route("/api/v1/test-boom", boom, methods=["GET"])
        app.router.routes.sort(key=lambda r: isinstance(r, Mount) and r.path == "")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    thread = ServerThread(app).start()
    worker = WorkerProcess(pool, f"otel-{uuid.uuid4().hex[:6]}", env=env).start()
    database = Database(settings.resolved_database_url)
    try:
        await worker.started(deadline=600)
        yield thread, database
    finally:
        worker.stop()
        await database.dispose()
        thread.stop()
        tracing.shut_down()


async def _publish(client: httpx.AsyncClient, graph: dict[str, Any]) -> str:
    response = await client.post("/api/v1/workflows", json={"name": graph["name"], "graph": graph}, timeout=180)
    assert response.status_code == 201, response.text
    workflow_id = response.json()["id"]
    response = await client.post(f"/api/v1/workflows/{workflow_id}/publish", json={}, timeout=180)
    assert response.status_code == 201, response.text
    return str(workflow_id)


def _graph(name: str, url: str, trigger: str = "trigger.webhook") -> dict[str, Any]:
    config = {"signature": {"scheme": "none"}} if trigger == "trigger.webhook" else {}
    return {
        "format": "gorax/graph@1",
        "name": f"{name}-{uuid.uuid4().hex[:6]}",
        "nodes": [
            {"id": "hook", "type": trigger, "position": {"x": 0, "y": 0}, "config": config},
            {
                "id": "call",
                "type": "http.request",
                "position": {"x": 0, "y": 100},
                "config": {
                    "method": "POST",
                    "url": url,
                    "credential": "peer_token",
                    "json": {"n": 1},
                    "timeout_seconds": 5,
                },
            },
        ],
        "edges": [{"id": "e1", "source": "hook", "target": "call"}],
    }


async def _final_run(workflow_id: str) -> Any:
    async def final() -> Any:
        runs = [r for r in await flow_runs(workflow_id) if r.state and r.state.is_final()]
        return runs[0] if runs else None

    deadline = time.monotonic() + 300
    while (run := await final()) is None:
        assert time.monotonic() < deadline, "the delivery's run did not end"
        await asyncio.sleep(0.5)
    return run


async def _tenant(traced: tuple[ServerThread, Database]) -> TenantHandle:
    thread, database = traced
    tenant = await new_tenant(database, thread.url)
    async with tenant.client() as admin:
        response = await admin.post(
            "/api/v1/credentials",
            json={"name": "peer_token", "type": "http-auth", "values": {"scheme": "bearer", "token": TOKEN}},
        )
        assert response.status_code == 201, response.text
    return tenant


# -- Tests ----------------------------------------------------------------------------------


async def test_a_webhook_delivery_is_one_trace_to_the_nodes_outbound_call(
    traced: tuple[ServerThread, Database], receivers: tuple[HttpPeer, HttpPeer, HttpPeer]
) -> None:
    otlp, _, target = receivers
    target.route("POST", "/echo", lambda r: PeerResponse(200, {"auth": r.headers.get("authorization")}))
    tenant = await _tenant(traced)
    trace_id, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    async with tenant.client() as admin:
        workflow_id = await _publish(admin, _graph("traced", f"{target.url}/echo"))
        hooks = (await admin.get("/api/v1/webhooks", params={"workflow_id": workflow_id})).json()["items"]
        response = await admin.post(
            hooks[0]["url"], json={"order": 7}, headers={"traceparent": f"00-{trace_id}-{caller_span}-01"}
        )
        assert response.status_code == 202, response.text
        run = await _final_run(workflow_id)
        assert run.state.is_completed(), run.state

        # The node's call carried the trace on to the peer.
        [call] = target.received("POST", "/echo")
        assert call.headers["traceparent"].split("-")[1] == trace_id

        def whole_trace() -> dict[str, Any] | None:
            spans = [s for s in _spans(otlp) if s["trace_id"] == trace_id]
            node = [s for s in spans if s["attributes"].get("gorax.node_id") == "call"]
            http = [s for s in spans if s["name"] == "HTTP POST"]
            flow = [s for s in spans if s["attributes"].get("prefect.run.id") == str(run.id)]
            server = [s for s in spans if s["attributes"].get("http.route") == "/webhook/{token}"]
            if node and http and flow and server:
                return {"node": node[0], "http": http[0], "flow": flow[0], "server": server[0], "all": spans}
            return None

        found = await _eventually(whole_trace)
        # request (under the caller's span) -> flow run -> node task -> outbound call
        assert found["server"]["parent"] == caller_span
        assert found["server"]["service"] == "gorax-api"
        assert found["flow"]["parent"] == found["server"]["span_id"]
        assert found["node"]["parent"] == found["flow"]["span_id"]
        assert found["http"]["parent"] == found["node"]["span_id"]
        assert found["node"]["service"] == "gorax-worker"
        attributes = found["node"]["attributes"]
        assert attributes["gorax.tenant_id"] == tenant.id
        assert attributes["gorax.workflow_id"] == workflow_id
        assert attributes["gorax.version"] == 1
        assert attributes["gorax.run_id"] == str(run.id)
        assert attributes["gorax.node_type"] == "http.request"
        assert found["flow"]["attributes"]["gorax.run_id"] == str(run.id)
        assert found["http"]["attributes"]["server.address"] == "127.0.0.1"
        assert found["http"]["attributes"]["http.response.status_code"] == 200
        # The webhook's URL token and the credential appear in no span.
        everything = json.dumps(_spans(otlp))
        assert TOKEN not in everything
        assert hooks[0]["url"].rsplit("/", 1)[1] not in everything

        # The execution's detail names its trace; the API says traces are on.
        detail = (await admin.get(f"/api/v1/executions/{run.id}")).json()
        assert detail["trace_id"] == trace_id
        status = (await admin.get("/api/v1/ops/telemetry")).json()
        assert status == {"tracing": True, "service_name": "gorax-api", "sentry": True}


async def test_errors_reach_sentry_without_secrets(
    traced: tuple[ServerThread, Database], receivers: tuple[HttpPeer, HttpPeer, HttpPeer]
) -> None:
    _, sentry, _ = receivers
    register_secret(TOKEN)  # as the API does for the credentials it reads
    tenant = await _tenant(traced)
    async with tenant.client() as admin:
        # An unhandled API error: a 500 in the shared body, and an event without the secret.
        response = await admin.get("/api/v1/test-boom", headers={"X-Api-Key": TOKEN, "Cookie": f"s={TOKEN}"})
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "INTERNAL_ERROR"

        def api_event() -> dict[str, Any] | None:
            return next(
                (e for e in _envelope_items(sentry) if e.get("tags", {}).get("route") == "/api/v1/test-boom"), None
            )

        event = await _eventually(api_event, timeout=30)
        [exception] = event["exception"]["values"]
        assert exception["type"] == "RuntimeError"
        assert "***" in exception["value"]
        assert event["tags"]["request_id"] == response.headers["x-request-id"]
        assert event["tags"]["gorax.component"] == "api"

        # A node that fails (nobody listens on port 9): the worker reports it, with its ids.
        workflow_id = await _publish(admin, _graph("failing", "http://127.0.0.1:9/nothing"))
        hooks = (await admin.get("/api/v1/webhooks", params={"workflow_id": workflow_id})).json()["items"]
        assert (await admin.post(hooks[0]["url"], json={"order": 8})).status_code == 202
        run = await _final_run(workflow_id)
        assert run.state.is_failed(), run.state

        def node_event() -> dict[str, Any] | None:
            return next((e for e in _envelope_items(sentry) if e.get("tags", {}).get("run_id") == str(run.id)), None)

        event = await _eventually(node_event)
        assert event["level"] == "error"
        assert event["tags"]["node_id"] == "call"
        assert event["tags"]["tenant_id"] == tenant.id
        assert event["tags"]["gorax.component"] == "worker"
        assert "node 'call' (http.request) failed" in event["message"]
    assert TOKEN not in _raw_envelopes(sentry)


def test_the_run_label_is_the_one_prefects_run_telemetry_reads() -> None:
    from prefect.telemetry.run_telemetry import LABELS_TRACEPARENT_KEY

    assert tracing.TRACEPARENT_LABEL == LABELS_TRACEPARENT_KEY


def test_nothing_is_configured_without_the_variables() -> None:
    assert not tracing.tracing_requested({})
    assert not tracing.tracing_requested({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
    assert tracing.tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing.tracing_requested({"OTEL_TRACES_EXPORTER": "console"})


def test_turning_sentry_off_patches_no_framework() -> None:
    """Configured, then shut down (as a test or an ending process does), Sentry leaves FastAPI,
    Starlette and httpx as they were: its auto-enabling FastAPI patch reads request bodies, and
    ``/mcp`` (whose SDK reads the body itself) then hung until the client gave up."""
    script = """
import fastapi.routing, httpx, httpx2, starlette.applications
from flows import tracing
originals = (fastapi.routing.get_request_handler, httpx2.AsyncClient.send, httpx.AsyncClient.send,
             starlette.applications.Starlette.__call__)
assert tracing.configure_sentry("api") and tracing.sentry_enabled()
tracing.shut_down()
assert not tracing.sentry_enabled()
now = (fastapi.routing.get_request_handler, httpx2.AsyncClient.send, httpx.AsyncClient.send,
       starlette.applications.Starlette.__call__)
print([a is b for a, b in zip(originals, now)])
"""
    env = {**os.environ, "SENTRY_DSN": "http://publickey@127.0.0.1:9/1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[True, True, True, True]"


def test_sentry_events_are_scrubbed() -> None:
    register_secret("s3cr3t-value-for-scrub")
    event = {
        "message": "failed with s3cr3t-value-for-scrub",
        "request": {
            "headers": {"Authorization": "Bearer abc", "X-Request-ID": "req_1"},
            "cookies": {"session": "xyz"},
            "data": {"password": "p", "name": "n", "nested": {"api_key": "k"}},
        },
        "extra": {"pairs": [["authorization", "Bearer abc"], ["accept", "*/*"]]},
    }
    scrubbed = tracing.scrub_event(event)
    assert scrubbed["message"] == "failed with ***"
    assert scrubbed["request"]["headers"] == {"Authorization": "[Filtered]", "X-Request-ID": "req_1"}
    assert scrubbed["request"]["cookies"] == "[Filtered]"
    assert scrubbed["request"]["data"] == {"password": "[Filtered]", "name": "n", "nested": {"api_key": "[Filtered]"}}
    assert scrubbed["extra"]["pairs"] == [["authorization", "[Filtered]"], ["accept", "*/*"]]


@pytest.mark.browser
async def test_a_run_started_through_the_api_shows_its_trace_in_the_web_app(
    traced: tuple[ServerThread, Database], receivers: tuple[HttpPeer, HttpPeer, HttpPeer]
) -> None:
    from playwright.async_api import async_playwright  # noqa: PLC0415 - browser tests only

    otlp, _, target = receivers
    target.route("POST", "/manual", PeerResponse(200, {"ok": True}))
    tenant = await _tenant(traced)
    trace_id = uuid.uuid4().hex
    async with tenant.client() as admin:
        workflow_id = await _publish(admin, _graph("manual", f"{target.url}/manual", trigger="trigger.manual"))
        response = await admin.post(
            f"/api/v1/workflows/{workflow_id}/execute",
            json={"input": {}, "wait": True, "timeout_seconds": 120},
            headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
            timeout=150,
        )
        assert response.status_code == 200, response.text
        execution_id = response.json()["execution_id"]
        # The run was created inside the request: its spans continue the caller's trace.
        detail = (await admin.get(f"/api/v1/executions/{execution_id}")).json()
        assert detail["trace_id"] == trace_id
        assert target.received("POST", "/manual")[-1].headers["traceparent"].split("-")[1] == trace_id
        await _eventually(
            lambda: [s for s in _spans(otlp) if s["trace_id"] == trace_id and s["attributes"].get("gorax.node_id")]
        )

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(20_000)
            await page.goto(tenant.base_url + "/")
            await page.get_by_label("Email").fill(tenant.email)
            await page.get_by_label("Password").fill(tenant.password)
            await page.get_by_role("button", name="Sign in").click()
            await page.get_by_test_id("whoami").wait_for()
            await page.goto(f"{tenant.base_url}/runs/{execution_id}")
            assert await page.get_by_test_id("trace-id").inner_text() == trace_id
            assert await page.get_by_role("button", name="Copy trace id").is_visible()
            await page.goto(f"{tenant.base_url}/admin")
            assert "exported as gorax-api" in await page.get_by_test_id("telemetry-tracing").inner_text()
            assert await page.get_by_test_id("telemetry-sentry").inner_text() == "on"
        finally:
            await browser.close()
