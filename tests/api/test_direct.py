"""Direct routes (api/direct.py): served without FastAPI's per-request machinery, answered the same."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.auth.deps import Public
from api.direct import GoraxAPI, direct
from api.errors import PayloadTooLarge
from api.handlers import install_error_handlers
from api.middleware import RequestContextMiddleware
from api.observability import Metrics

seen: list[dict[str, Any]] = []


@direct
async def probe(request: Request) -> JSONResponse:
    """Echo what the endpoint sees; ``?fail=`` raises."""
    fail = request.query_params.get("fail")
    if fail == "api":
        raise PayloadTooLarge("too big", details={"limit": 1})
    if fail == "bug":
        raise RuntimeError("a bug")
    body = await request.body()
    seen.append({"scope_route": request.scope["fastapi"]["effective_route_context"].path_format})
    return JSONResponse(
        {"token": request.path_params["token"], "method": request.method, "body": body.decode()}, status_code=202
    )


async def fastapi_only(token: str) -> dict[str, str]:
    return {"token": token, "served": "fastapi"}


def _app(*routes: tuple[str, Any, list[str], list[Any]]) -> GoraxAPI:
    app = GoraxAPI()
    install_error_handlers(app)
    router = APIRouter()
    for path, endpoint, methods, dependencies in routes:
        router.add_api_route(path, endpoint, methods=methods, dependencies=dependencies)
    app.include_router(router, prefix="/in")
    app.add_middleware(RequestContextMiddleware, metrics=Metrics())
    return app


def _client(app: GoraxAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t")


async def test_a_direct_route_is_answered_like_any_other() -> None:
    public = [Public(limit_by_address=False)]
    app = _app(("/hook/{token}", probe, ["POST", "PUT"], public), ("/hook/{token}", fastapi_only, ["GET"], public))
    seen.clear()
    async with _client(app) as client:
        answer = await client.post("/in/hook/abc", content=b"x" * 70_000)
        assert answer.status_code == 202
        assert answer.json() == {"token": "abc", "method": "POST", "body": "x" * 70_000}
        # The user middleware wraps it: request id, security headers.
        assert answer.headers["x-request-id"].startswith("req_")
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert seen == [{"scope_route": "/in/hook/{token}"}]
        # Another method of the same path, not marked direct, is FastAPI's as before.
        assert (await client.get("/in/hook/abc")).json() == {"token": "abc", "served": "fastapi"}
        assert (await client.delete("/in/hook/abc")).status_code == 405
        assert (await client.post("/in/hook/abc/more")).status_code == 404

        # Errors become the app's error body, with the request id.
        too_big = await client.post("/in/hook/abc?fail=api", headers={"x-request-id": "mine-1"})
        assert too_big.status_code == 413
        assert too_big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        assert too_big.json()["error"]["request_id"] == "mine-1"
        assert too_big.headers["x-request-id"] == "mine-1"
        crashed = await client.put("/in/hook/abc?fail=bug")
        assert crashed.status_code == 500
        assert crashed.json()["error"]["code"] == "INTERNAL_ERROR" and "a bug" not in crashed.text


def test_a_route_that_needs_solving_cannot_be_direct() -> None:
    @direct
    async def with_param(request: Request, token: str) -> JSONResponse:
        return JSONResponse({})

    def extra() -> None:
        return None

    @direct
    async def with_dependency(request: Request) -> JSONResponse:
        return JSONResponse({})

    for endpoint, dependencies in (
        (with_param, [Public()]),
        (with_dependency, [Public(), Depends(extra)]),
        (probe, []),
    ):
        app = _app(("/hook/{token}", endpoint, ["POST"], dependencies))
        with pytest.raises(TypeError, match=r"/in/hook/\{token\} cannot be served directly"):
            app.build_direct_routes()
