"""Ops endpoints, error bodies, request ids, security headers, CORS, metrics, the editor build."""

from __future__ import annotations

import base64
import gc
from pathlib import Path

import httpx
from prefect.context import AsyncClientContext
from starlette.testclient import TestClient

from api.app import GC_THRESHOLDS, create_app
from api.prefect import PrefectDep
from flows.settings import PrefectSettings
from tests.api.conftest import TenantHandle, api_settings, make_settings
from tests.conftest import PrefectServer
from tests.peers import HttpPeer, PeerResponse


async def test_health_and_readiness_against_real_prefect(prefect_server: PrefectServer, sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, prefect=PrefectSettings(api_url=prefect_server.api_url))
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "prefect": "ok"}


def test_started_api_freezes_what_it_loaded_and_collects_less_often(sqlite_url: str) -> None:
    previous = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        with TestClient(create_app(make_settings(sqlite_url))) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] >= 10_000
            assert gc.get_freeze_count() > 10_000  # modules, routes, models: out of the collector
    finally:
        gc.set_threshold(*previous)


def test_readiness_sends_prefect_basic_auth_and_reports_failures(http_peer: HttpPeer, sqlite_url: str) -> None:
    http_peer.route("GET", "/api/health", PeerResponse(200, True))
    settings = make_settings(
        sqlite_url, prefect=PrefectSettings(api_url=f"{http_peer.url}/api", auth_string="admin:s3cret")
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        sent = http_peer.received("GET", "/api/health")[-1].headers["authorization"]
        assert sent == "Basic " + base64.b64encode(b"admin:s3cret").decode()
        http_peer.route("GET", "/api/health", PeerResponse(500, {"no": 1}))
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json() == {"status": "unavailable", "checks": {"database": "ok", "prefect": "error: HTTP 500"}}


async def test_error_body_request_id_and_security_headers(anon: httpx.AsyncClient) -> None:
    missing = await anon.get("/api/v1/no-such-thing", headers={"X-Request-ID": "abc-123"})
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "abc-123"
    assert missing.json() == {
        "error": {"code": "NOT_FOUND", "message": "Not Found", "details": {}, "request_id": "abc-123"}
    }
    invalid = await anon.post("/api/v1/auth/login", json={"email": "a@b.test"})
    assert invalid.status_code == 422
    error = invalid.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["errors"][0]["path"] == "body.password"
    assert error["details"]["errors"][0]["field"] == "password"
    assert error["request_id"].startswith("req_")
    headers = (await anon.get("/healthz")).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    # A hostile request id is replaced, not echoed.
    odd = await anon.get("/healthz", headers={"X-Request-ID": 'x" onload=1'})
    assert odd.headers["x-request-id"].startswith("req_")


async def test_cors_is_off_by_default(anon: httpx.AsyncClient) -> None:
    preflight = await anon.options(
        "/api/v1/auth/me", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_when_configured(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, api=api_settings(cors_origins="https://ok.example")))
    with TestClient(app) as client:
        allowed = client.options(
            "/api/v1/auth/me", headers={"Origin": "https://ok.example", "Access-Control-Request-Method": "GET"}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://ok.example"


async def test_metrics_count_requests_by_route_and_status(anon: httpx.AsyncClient, tenant: TenantHandle) -> None:
    async with tenant.client() as admin:
        await admin.get("/api/v1/members")
    await anon.get("/api/v1/members")
    text = (await anon.get("/metrics")).text
    assert 'gorax_http_requests_total{method="GET",route="/api/v1/members",status="200"}' in text
    assert 'gorax_http_requests_total{method="GET",route="/api/v1/members",status="401"}' in text
    assert 'gorax_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/members"}' in text


def test_unhandled_errors_become_the_error_body(sqlite_url: str, tmp_path: Path) -> None:
    # No editor build, so the route added below is not shadowed by the static mount.
    app = create_app(make_settings(sqlite_url), web_dist=tmp_path)

    @app.get("/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("secret detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert "secret" not in response.text
    assert response.headers["x-request-id"] == response.json()["error"]["request_id"]


async def test_requests_get_the_apps_prefect_client_and_no_client_context(
    prefect_server: PrefectServer, sqlite_url: str, tmp_path: Path
) -> None:
    # A route asks for the app's client (PrefectDep): the same one in every request, open for
    # the app's life and closed with it. Prefect's own client context is left alone: code that
    # wants the app's client is handed it, nothing is injected into Prefect's ContextVar.
    settings = make_settings(sqlite_url, prefect=PrefectSettings(api_url=prefect_server.api_url))
    app = create_app(settings, web_dist=tmp_path)

    @app.get("/client", include_in_schema=False)
    async def client_id(prefect: PrefectDep) -> dict[str, object]:
        healthy = (await prefect.hello()).status_code == 200
        return {"id": id(prefect), "healthy": healthy, "context": AsyncClientContext.get() is not None}

    with TestClient(app) as client:
        first, second = client.get("/client").json(), client.get("/client").json()
        assert first["healthy"] and second["healthy"]
        assert first["id"] == second["id"] == id(app.state.gorax.prefect)
        assert not first["context"] and not second["context"]
        opened = app.state.gorax.prefect
    assert app.state.gorax.prefect is None  # closed with the app
    assert opened._closed


def test_serves_the_editor_build_with_spa_fallback(tmp_path: Path, sqlite_url: str) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>gorax editor</html>")
    (dist / "assets" / "app.js").write_text("console.log(1)")
    with TestClient(create_app(make_settings(sqlite_url), web_dist=dist)) as client:
        assert "gorax editor" in client.get("/").text
        assert client.get("/assets/app.js").text == "console.log(1)"
        assert "gorax editor" in client.get("/workflows/abc/edit").text
        api_missing = client.get("/api/v1/nothing")
        assert api_missing.status_code == 404 and api_missing.json()["error"]["code"] == "NOT_FOUND"
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/docs").status_code == 200
