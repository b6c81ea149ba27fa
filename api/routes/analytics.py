"""Analytics for the dashboard, from the tenant's Prefect runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from api.auth.deps import Requires
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import BadRequest
from api.prefect import PrefectDep
from api.services import analytics

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
