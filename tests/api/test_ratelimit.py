"""Rate limits per tenant and route class, with X-RateLimit-* headers, in memory and in Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Request
from starlette.testclient import TestClient

from api.app import create_app
from api.auth.deps import Public, enforce_tenant_rate_limit
from api.db.engine import Database
from api.ratelimit import RateLimiter, route_class
from tests.api.conftest import ServerThread, api_settings, make_settings, new_tenant

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def limited_server(sqlite_url: str) -> Iterator[str]:
    """An API whose tenants may make 4 API calls and 2 sign-in attempts per window."""
    api = api_settings(rate_limit_api=6, rate_limit_auth=2, rate_limit_window_seconds=3600)
    thread = ServerThread(create_app(make_settings(sqlite_url, api=api))).start()
    yield thread.url
    thread.stop()


async def test_tenant_limit_headers_and_429(limited_server: str, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        # Creating each tenant's role keys uses 3 of its 6 calls.
        first = await new_tenant(db, limited_server)
        second = await new_tenant(db, limited_server)
    finally:
        await db.dispose()
    async with first.client() as client:
        seen = []
        for _ in range(3):
            response = await client.get("/api/v1/auth/me")
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "6"
            seen.append(int(response.headers["x-ratelimit-remaining"]))
        assert seen == [2, 1, 0]
        refused = await client.get("/api/v1/auth/me")
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == "RATE_LIMITED"
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert int(refused.headers["retry-after"]) >= 1
        assert int(refused.headers["x-ratelimit-reset"]) > 0
        # The answer names the limit that was hit, its number and window, and when it resets.
        details = error["details"]
        assert details["limit"] == "rate_limit_api" and details["max"] == 6 and details["window_seconds"] == 3600
        assert details["reset"] == int(refused.headers["x-ratelimit-reset"])
        assert datetime.fromisoformat(details["resets_at"]).timestamp() == details["reset"]
        assert "rate_limit_api" in error["message"] and details["resets_at"] in error["message"]
        assert "tenant" in error["message"]
    # The limit is per tenant: another tenant is unaffected.
    async with second.client() as client:
        assert (await client.get("/api/v1/auth/me")).status_code == 200


async def test_sign_in_is_limited_per_client_address(limited_server: str) -> None:
    async with httpx.AsyncClient(base_url=limited_server) as anon:
        statuses = [
            (
                await anon.post("/api/v1/auth/login", json={"email": f"{uuid.uuid4().hex}@x.test", "password": "x"})
            ).status_code
            for _ in range(3)
        ]
        refused = await anon.post("/api/v1/auth/login", json={"email": "x@x.test", "password": "x"})
    assert statuses == [401, 401, 429]
    error = refused.json()["error"]
    assert refused.status_code == 429 and error["details"]["limit"] == "rate_limit_auth"
    assert error["details"]["max"] == 2 and "client address" in error["message"]
    assert "127.0.0.1" not in error["message"]


def test_route_classes_follow_appendix_d() -> None:
    assert route_class("/api/v1/workflows/abc/execute") == "execute"
    assert route_class("/api/v1/credentials") == "credentials"
    assert route_class("/api/v1/credentials/1") == "credentials"
    assert route_class("/webhook/tok") == "webhook"
    assert route_class("/api/v1/workflows") == "api"
    assert route_class("/healthz") is None


async def test_redis_counters_are_shared_between_replicas() -> None:
    config = api_settings(rate_limit_execute=2)
    replicas = [RateLimiter(config, REDIS_URL), RateLimiter(config, REDIS_URL)]
    subject = f"tenant:{uuid.uuid4()}"
    path = "/api/v1/workflows/w1/execute"
    try:
        decisions = [await replicas[i % 2].hit(subject, path) for i in range(3)]
    finally:
        for limiter in replicas:
            await limiter.close()
    assert [d.allowed for d in decisions if d] == [True, True, False]
    assert [d.remaining for d in decisions if d] == [1, 0, 0]


async def test_redis_backed_server(sqlite_url: str) -> None:
    api = api_settings(redis_url=REDIS_URL, rate_limit_auth=1, rate_limit_window_seconds=3600)
    thread = ServerThread(create_app(make_settings(sqlite_url, api=api))).start()
    try:
        # A fresh address-like key per run is impossible (all from 127.0.0.1), so the Redis key
        # may already hold counts from an earlier run; what matters is that the 2nd call is 429.
        # A server thread still starting on a loaded machine may take longer than httpx's 5 s default.
        async with httpx.AsyncClient(base_url=thread.url, timeout=60) as anon:
            body = {"email": "nobody@x.test", "password": "x"}
            await anon.post("/api/v1/auth/login", json=body)
            second = await anon.post("/api/v1/auth/login", json=body)
        assert second.status_code == 429 and second.headers["x-ratelimit-limit"] == "1"
    finally:
        thread.stop()


def test_public_route_can_charge_the_tenant(sqlite_url: str, tmp_path: Path) -> None:
    router = APIRouter()

    @router.post("/webhook/probe/{token}", dependencies=[Public(limit_by_address=False)])
    async def hook(token: str, request: Request) -> dict:
        await enforce_tenant_rate_limit(request, tenant_id=f"t-{token}")
        return {}

    api = api_settings(rate_limit_webhook=2, rate_limit_window_seconds=3600)
    app = create_app(make_settings(sqlite_url, api=api), web_dist=tmp_path)
    app.include_router(router)
    with TestClient(app) as client:
        codes = [client.post("/webhook/probe/a").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert client.post("/webhook/probe/b").status_code == 200  # another tenant's budget
