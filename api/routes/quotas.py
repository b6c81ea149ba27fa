"""The tenant's quotas and what it used of each: ``GET /tenant/usage`` (admins)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from api.auth.deps import DatabaseDep, Requires, StateDep, TenantSession
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

    name: str = Field(
        description="runs_per_month, concurrent_runs, webhook_requests_per_minute, storage_bytes, "
        "agent_tokens_per_month, agent_cost_usd_per_month or agent_tool_calls_per_month."
    )
    unit: str = Field(description="runs, requests, bytes, tokens, USD or tool calls.")
    limit: int | float = Field(description="The limit; 0 when unlimited.")
    unlimited: bool
    source: str = Field(description="default (the operator's default) or tenant (set for this tenant).")
    used: int | float = Field(description="Used now (this month, running now, this minute, stored).")
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


class AgentUsageAdd(BaseModel):
    """What an agent node used (internal: the worker records it after each model or tool call)."""

    tenant_id: str = Field(min_length=1, max_length=36)
    tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    tool_calls: int = Field(default=0, ge=0)


class AgentUsage(BaseModel):
    """The tenant's agent usage this month, after the addition, and when it resets."""

    agent_tokens_per_month: int
    agent_cost_usd_per_month: float
    agent_tool_calls_per_month: int
    resets_at: datetime


@router.post("/internal/agent-usage", response_model=AgentUsage)
async def add_agent_usage(
    body: AgentUsageAdd,
    db: DatabaseDep,
    _: Principal = Requires(Permission.INTERNAL),
) -> AgentUsage:
    """Count what an agent used against its tenant's month (all zero: only read the count)."""
    used = await quotas.add_agent_usage(
        db, tenant_id=body.tenant_id, tokens=body.tokens, cost_usd=body.cost_usd, tool_calls=body.tool_calls
    )
    _start, reset = quotas.month_window()
    return AgentUsage(**used, resets_at=reset)
