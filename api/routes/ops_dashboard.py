"""The operations dashboard: run rates, durations, queue depth, worker health, webhook intake
and error budgets of the tenant; and the SLOs admins set per workflow."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, Field

from api.auth.deps import AuditCtx, Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.prefect import PrefectDep
from api.services import audit, ops_dashboard

router = APIRouter(tags=["operations"])
WorkflowId = Path(max_length=64, description="The workflow's id.")


class MinuteRuns(BaseModel):
    """Runs whose (expected) start falls in one minute."""

    start: datetime
    total: int
    completed: int
    failed: int = Field(description="Failed, crashed or timed out.")
    other: int = Field(description="Pending, running, cancelled or paused.")


class WorkflowStats(BaseModel):
    """One workflow's runs over the window."""

    workflow_id: str | None
    workflow_name: str | None
    total: int
    completed: int
    failed: int
    success_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    last_run_at: datetime | None


class ErrorBudget(BaseModel):
    """A workflow's error budget against its SLO, over the SLO's window."""

    workflow_id: str
    workflow_name: str
    target: float = Field(description="The success rate the SLO asks for, e.g. 0.99.")
    window_days: int
    runs: int = Field(description="Finished runs (completed or failed) in the window.")
    failed: int
    success_rate: float | None
    allowed_failures: float = Field(description="(1 - target) x runs.")
    consumed: float = Field(description="Failures over allowed failures (above 1: overspent).")
    remaining: float = Field(description="1 - consumed (negative: overspent).")
    burn_rate: float | None = Field(description="Failure rate over the allowed one, whole window.")
    burn_rate_1h: float | None = Field(description="The same over the last hour.")
    state: Literal["ok", "at_risk", "exhausted", "no_data"]


class WorkerStatus(BaseModel):
    """A worker polling the work pool."""

    name: str
    status: str = Field(description="Prefect's status: online or offline.")
    last_heartbeat: datetime | None
    heartbeat_interval_seconds: int
    healthy: bool = Field(description="Its last heartbeat is within 3 heartbeat intervals.")


class QueueStatus(BaseModel):
    """The tenant's work queue, its runs waiting there, and the pool's workers."""

    pool: str
    name: str
    exists: bool
    paused: bool
    concurrency_limit: int | None
    last_polled: datetime | None
    scheduled: int
    late: int
    pending: int
    workers: list[WorkerStatus]


class MinuteIntake(BaseModel):
    """Webhook deliveries received in one minute."""

    start: datetime
    accepted: int
    rejected: int = Field(description="Refused: bad or missing signature.")
    ignored: int = Field(description="Filtered out or duplicates.")


class WebhookIntake(BaseModel):
    """Webhook deliveries: per minute of the last hour, and totals over the window."""

    per_minute: list[MinuteIntake]
    by_status: dict[str, int]
    total: int
    accepted: int
    rejected: int
    ignored: int
    failure_rate: float | None


class SloCandidate(BaseModel):
    """A workflow an SLO can be set on."""

    workflow_id: str
    workflow_name: str


class OpsDashboard(BaseModel):
    """The operations page's figures for the tenant."""

    generated_at: datetime
    window: str
    since: datetime
    truncated: bool = Field(description="More runs exist than were read.")
    runs_per_minute: list[MinuteRuns]
    runs_last_hour: int
    success_rate: float | None
    workflows: list[WorkflowStats]
    error_budgets: list[ErrorBudget]
    slo_candidates: list[SloCandidate]
    queues: list[QueueStatus]
    webhooks: WebhookIntake


class SloIn(BaseModel):
    """A workflow's service-level objective."""

    target: float = Field(gt=0, lt=1, description="Success rate to meet, e.g. 0.99 (strictly between 0 and 1).")
    window_days: int = Field(ge=1, le=90, description="Days the success rate is measured over.")


class Slo(SloIn):
    """A workflow's SLO as stored."""

    workflow_id: str
    updated_at: datetime
    updated_by: str | None


@router.get("/ops/dashboard", response_model=OpsDashboard)
async def ops_dashboard_view(
    prefect: PrefectDep,
    state: StateDep,
    session: TenantSession,
    window: Literal["1h", "24h", "7d", "30d"] = Query(
        default="24h", description="Range of the per-workflow figures and the intake totals."
    ),
    principal: Principal = Requires(Permission.EXECUTION_READ),
) -> OpsDashboard:
    """Runs per minute, success rate, p50/p95 per workflow, queue depth and worker health,
    webhook intake and error budgets of the caller's tenant."""
    data = await ops_dashboard.dashboard(
        prefect,
        session,
        tenant_id=principal.required_tenant_id(),
        window=window,
        work_pool=state.settings.work_pool,
    )
    return OpsDashboard.model_validate(data)


@router.put("/workflows/{workflow_id}/slo", response_model=Slo)
async def put_slo(
    body: SloIn,
    session: TenantSession,
    context: AuditCtx,
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> Slo:
    """Set (or change) the workflow's SLO."""
    tenant_id = principal.required_tenant_id()
    slo, before = await ops_dashboard.set_slo(
        session,
        tenant_id=tenant_id,
        workflow_id=workflow_id,
        target=body.target,
        window_days=body.window_days,
        actor=principal.actor,
    )
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="workflow.slo.set",
        context=context,
        resource_type="workflow",
        resource_id=workflow_id,
        before=before,
        after=body.model_dump(),
    )
    await session.commit()
    return Slo(
        workflow_id=slo.workflow_id,
        target=slo.target,
        window_days=slo.window_days,
        updated_at=slo.updated_at,
        updated_by=slo.updated_by,
    )


@router.delete("/workflows/{workflow_id}/slo", status_code=status.HTTP_204_NO_CONTENT)
async def delete_slo(
    session: TenantSession,
    context: AuditCtx,
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> Response:
    """Remove the workflow's SLO."""
    tenant_id = principal.required_tenant_id()
    before = await ops_dashboard.delete_slo(session, tenant_id=tenant_id, workflow_id=workflow_id)
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="workflow.slo.delete",
        context=context,
        resource_type="workflow",
        resource_id=workflow_id,
        before=before,
    )
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
