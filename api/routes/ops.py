"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from api.auth.deps import Public, StateDep

ROOT = True
router = APIRouter(tags=["ops"])


class Health(BaseModel):
    """Liveness answer."""

    status: str = Field(description="Always 'ok' while the process serves requests.")


class Readiness(BaseModel):
    """Readiness answer: each dependency's state."""

    status: str = Field(description="'ok' when every check passed, else 'unavailable'.")
    checks: dict[str, str] = Field(description="Per dependency: 'ok' or the error.")


@router.get("/healthz", response_model=Health, dependencies=[Public()])
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    dependencies=[Public()],
    responses={503: {"model": Readiness, "description": "A dependency is unavailable"}},
)
async def readyz(state: StateDep) -> JSONResponse:
    """The Gorax database and the Prefect API answer."""

    async def database() -> str:
        try:
            await asyncio.wait_for(state.db.ping(), timeout=5)
            return "ok"
        except Exception as exc:  # any failure means not ready; report its type only
            return f"error: {type(exc).__name__}"

    async def prefect() -> str:
        prefect_settings = state.settings.prefect
        url = f"{prefect_settings.url}/health"
        try:
            async with httpx.AsyncClient(timeout=5, auth=prefect_settings.basic_auth()) as client:
                response = await client.get(url)
            return "ok" if response.status_code == 200 else f"error: HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            return f"error: {type(exc).__name__}"

    db_state, prefect_state = await asyncio.gather(database(), prefect())
    checks = {"database": db_state, "prefect": prefect_state}
    ok = all(v == "ok" for v in checks.values())
    body = Readiness(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    dependencies=[Public()],
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(state: StateDep) -> PlainTextResponse:
    """Request counts and latencies by route and status, in Prometheus text format."""
    return PlainTextResponse(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
