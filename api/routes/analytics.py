"""Analytics for the dashboard, from the tenant's Prefect runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path, Query

from api.auth.deps import Requires
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import BadRequest
from api.prefect import PrefectDep
from api.services import analytics, costs

router = APIRouter(prefix="/analytics", tags=["analytics"])


def _check(since: datetime | None, until: datetime | None) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise BadRequest(f"{name} needs a timezone", details={"field": name})
    if since and until and since >= until:
        raise BadRequest("since must be before until", details={"field": "since"})


@router.get("/executions")
async def execution_analytics(
    prefect: PrefectDep,
    since: datetime | None = Query(default=None, description="Default: 7 days before until."),
    until: datetime | None = Query(default=None, description="Default: now."),
    interval: str = Query(default="day", pattern="^(hour|day)$"),
    principal: Principal = Requires(Permission.EXECUTION_READ),
) -> dict[str, Any]:
    """Runs per interval, success rate, p50/p95 duration, failures by workflow and node."""
    _check(since, until)
    return await analytics.execution_analytics(
        prefect, tenant_id=principal.required_tenant_id(), since=since, until=until, interval=interval
    )


@router.get("/workflows")
async def workflow_analytics(
    prefect: PrefectDep,
    since: datetime | None = Query(default=None),
    until: datetime | None = Query(default=None),
    principal: Principal = Requires(Permission.EXECUTION_READ),
) -> dict[str, Any]:
    """Per workflow counts, success rate and durations."""
    _check(since, until)
    return await analytics.workflow_analytics(
        prefect, tenant_id=principal.required_tenant_id(), since=since, until=until
    )


@router.get("/costs")
async def cost_analytics(
    prefect: PrefectDep,
    since: datetime | None = Query(default=None, description="Default: 7 days before until."),
    until: datetime | None = Query(default=None, description="Default: now."),
    principal: Principal = Requires(Permission.EXECUTION_READ),
) -> dict[str, Any]:
    """LLM tokens and cost (USD) in total, per workflow and for the costliest runs, from the
    runs' step records (language-model and agent usage); runs tagged ``gorax:test`` left out."""
    _check(since, until)
    return await costs.cost_analytics(prefect, tenant_id=principal.required_tenant_id(), since=since, until=until)


@router.get("/executions/{execution_id}/cost")
async def execution_cost(
    prefect: PrefectDep,
    execution_id: str = Path(max_length=64, description="The execution (Prefect flow run) id."),
    principal: Principal = Requires(Permission.EXECUTION_READ),
) -> dict[str, Any]:
    """One run's LLM tokens and cost, in total and per step."""
    return await costs.execution_cost(prefect, tenant_id=principal.required_tenant_id(), execution_id=execution_id)
