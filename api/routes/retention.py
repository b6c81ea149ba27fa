"""Retention (admins): the tenant's policy, running the job now, and its reports.

The router's lifespan runs the scheduled retention job (:class:`api.services.retention.RetentionJob`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth.deps import AuditCtx, DatabaseDep, Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.models.retention import RetentionRun
from api.prefect import PrefectDep, prefect_of
from api.services import retention as service


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state.gorax
    job = service.RetentionJob(state.db, prefect_of(app), state.config)
    await job.start()
    try:
        yield
    finally:
        await job.stop()


router = APIRouter(prefix="/retention", tags=["retention"], lifespan=_lifespan)

_DAYS = "Days; null: the operator's default."


class RetentionField(BaseModel):
    """One policy value: what applies, what the tenant chose, and what the operator allows."""

    value: int = Field(description="What applies now.")
    chosen: int | None = Field(description="The tenant's choice (null: the operator's default).")
    default: int = Field(description="The operator's default.")
    minimum: int = Field(description="The smallest value a tenant may choose.")
    maximum: int | None = Field(description="The largest value a tenant may choose (null: no bound).")


class RetentionPolicyPublic(BaseModel):
    execution_days: RetentionField
    executions_per_workflow: RetentionField
    step_data_days: RetentionField
    delivery_days: RetentionField
    deliveries_per_webhook: RetentionField
    audit_days: RetentionField
    audit_anchor_seq: int | None = Field(
        description="Audit events up to this seq were pruned; the chain is verified from there."
    )
    updated_at: datetime | None
    updated_by: str | None


class RetentionPolicyUpdate(BaseModel):
    """The fields to change (absent: unchanged; null: back to the operator's default)."""

    model_config = ConfigDict(extra="forbid")

    execution_days: int | None = Field(default=None, description=f"Finished executions older than this go. {_DAYS}")
    executions_per_workflow: int | None = Field(
        default=None, description="Finished executions kept per workflow, newest first; null: the default."
    )
    step_data_days: int | None = Field(
        default=None, description=f"Step inputs and outputs older than this are removed. {_DAYS}"
    )
    delivery_days: int | None = Field(default=None, description=f"Webhook deliveries older than this go. {_DAYS}")
    deliveries_per_webhook: int | None = Field(
        default=None, description="Delivery records kept per webhook, newest first; null: the default."
    )
    audit_days: int | None = Field(default=None, description=f"Audit events older than this are pruned. {_DAYS}")


class RetentionCounts(BaseModel):
    executions: int = 0
    step_records: int = 0
    webhook_deliveries: int = 0
    audit_events: int = 0


class RetentionRunPublic(BaseModel):
    """What one retention run did for the tenant."""

    id: str
    trigger: Literal["schedule", "manual"]
    status: Literal["completed", "failed"]
    started_at: datetime
    finished_at: datetime | None
    deleted: RetentionCounts
    batches: int = Field(description="Delete batches it took (each at most GORAX_RETENTION_BATCH_SIZE).")
    error: str | None


def _run(run: RetentionRun) -> RetentionRunPublic:
    return RetentionRunPublic(
        id=run.id,
        trigger=run.trigger,  # type: ignore[arg-type]
        status=run.status,  # type: ignore[arg-type]
        started_at=run.started_at,
        finished_at=run.finished_at,
        deleted=RetentionCounts(**run.deleted),
        batches=run.batches,
        error=run.error,
    )


async def _public(session: TenantSession, tenant_id: str, policy: service.Policy) -> RetentionPolicyPublic:
    anchor = await service.audit_anchor(session, tenant_id=tenant_id)
    fields = {
        name: RetentionField(
            value=policy.effective[name],
            chosen=policy.chosen[name],
            default=policy.bounds[name].default,
            minimum=policy.bounds[name].minimum,
            maximum=policy.bounds[name].maximum,
        )
        for name in service.FIELDS
    }
    return RetentionPolicyPublic(
        **fields,
        audit_anchor_seq=anchor.seq if anchor else None,
        updated_at=policy.updated_at,
        updated_by=policy.updated_by,
    )


@router.get("/policy", response_model=RetentionPolicyPublic)
async def get_policy(
    session: TenantSession, state: StateDep, principal: Principal = Requires(Permission.SETTINGS_MANAGE)
) -> RetentionPolicyPublic:
    """The tenant's retention policy, with the operator's defaults and bounds."""
    tenant_id = principal.required_tenant_id()
    policy = await service.get_policy(session, tenant_id=tenant_id, config=state.config)
    return await _public(session, tenant_id, policy)


@router.put("/policy", response_model=RetentionPolicyPublic)
async def put_policy(
    body: RetentionPolicyUpdate,
    session: TenantSession,
    state: StateDep,
    context: AuditCtx,
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> RetentionPolicyPublic:
    """Change the tenant's retention: any value within the operator's bounds (400 names the field
    and the bound otherwise). Applies from the next retention run."""
    tenant_id = principal.required_tenant_id()
    policy = await service.set_policy(
        session,
        tenant_id=tenant_id,
        values=body.model_dump(exclude_unset=True),
        config=state.config,
        context=context,
    )
    return await _public(session, tenant_id, policy)


@router.post("/runs", response_model=RetentionRunPublic)
async def run_now(
    db: DatabaseDep,
    state: StateDep,
    prefect: PrefectDep,
    context: AuditCtx,
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> RetentionRunPublic:
    """Apply the tenant's policy now and answer its report (409 while a run for the tenant is
    going on)."""
    run = await service.run_tenant(
        db, prefect, state.config, tenant_id=principal.required_tenant_id(), trigger="manual", context=context
    )
    return _run(run)


@router.get("/runs", response_model=list[RetentionRunPublic])
async def list_runs(
    session: TenantSession,
    limit: int = Query(default=10, ge=1, le=100),
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> list[RetentionRunPublic]:
    """The tenant's latest retention reports, newest first."""
    return [_run(r) for r in await service.recent_runs(session, tenant_id=principal.required_tenant_id(), limit=limit)]
