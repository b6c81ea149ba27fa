"""The tenant's quotas and what it used of each: ``GET /tenant/usage`` (admins)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from api.auth.deps import Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.prefect import PrefectDep, prefect_of
from api.services import quotas

log = logging.getLogger("gorax.quotas")


async def _sync_all(app: FastAPI) -> None:
    state = app.state.gorax
    try:
        await quotas.sync_all(state.db, prefect_of(app), config=state.config)
    except Exception as exc:  # noqa: BLE001 - retried lazily: each execute and usage read syncs its tenant
        log.warning("the tenants' quotas could not all be written to Prefect: %s", exc)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # In the background: the API serves while Prefect gets every tenant's run slots and quota.
    task = asyncio.create_task(_sync_all(app))
    try:
        yield
    finally:
        task.cancel()


router = APIRouter(tags=["quotas"], lifespan=_lifespan)


class QuotaUsage(BaseModel):
    """One limit of the tenant and what is used of it."""

    name: str = Field(description="runs_per_month, concurrent_runs, webhook_requests_per_minute or storage_bytes.")
    unit: str = Field(description="runs, requests or bytes.")
    limit: int = Field(description="The limit; 0 when unlimited.")
    unlimited: bool
    source: str = Field(description="default (the operator's default) or tenant (set for this tenant).")
    used: int = Field(description="Used now (this month, running now, this minute, stored).")
    resets_at: datetime | None = Field(description="When the count starts again (None: it does not reset).")


class TenantUsage(BaseModel):
    """Every quota of the tenant."""

    tenant_id: str
    items: list[QuotaUsage]


@router.get("/tenant/usage", response_model=TenantUsage)
async def tenant_usage(
    session: TenantSession,
    state: StateDep,
    prefect: PrefectDep,
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> TenantUsage:
    """Each quota of the tenant (runs per month, concurrent runs, webhook requests per minute,
    storage), how much is used and when it resets. Operators set them (``gorax quotas set``)."""
    tenant_id = principal.required_tenant_id()
    items = await quotas.usage(session, prefect, state.limiter, tenant_id=tenant_id, config=state.config)
    return TenantUsage(tenant_id=tenant_id, items=[QuotaUsage(**item) for item in items])
