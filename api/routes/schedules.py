"""Schedules: the Prefect deployment schedules of the tenant's workflows.

Schedule triggers become schedules when a workflow is published (slug ``trigger-<node id>``);
these routes list, add, change, delete, pause, resume and trigger them
(:mod:`api.services.schedules`). A schedule's id is Prefect's. Prefect deletes a schedule's
queued runs when it is paused, so resuming asks Prefect to schedule the deployment's runs again
right away.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, Field

from api.auth.deps import AuditCtx, Requires, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.prefect import PrefectDep
from api.schemas import Page
from api.services import schedules as service
from translator.nodetypes import ScheduleSpec

router = APIRouter(prefix="/schedules", tags=["schedules"])
ScheduleId = Path(max_length=64, description="The schedule's id (Prefect's).")


class ScheduleCreate(ScheduleSpec):
    """A new schedule of a published workflow."""

    workflow_id: str = Field(max_length=64)
    node_id: str | None = Field(default=None, max_length=100, description="The trigger node the runs start from.")


class SchedulePublic(BaseModel):
    """A schedule as the API shows it."""

    id: str
    workflow_id: str
    node_id: str | None
    cron: str | None
    interval_seconds: int | None
    timezone: str
    active: bool
    next_runs: list[datetime] = Field(default_factory=list)


def _public(schedule: service.Schedule) -> SchedulePublic:
    return SchedulePublic(**{**asdict(schedule), "next_runs": list(schedule.next_runs)})


@router.get("", response_model=Page[SchedulePublic])
async def list_schedules(
    session: TenantSession,
    prefect: PrefectDep,
    workflow_id: str | None = Query(default=None, max_length=64),
    principal: Principal = Requires(Permission.SCHEDULE_READ),
) -> Page[SchedulePublic]:
    """Every schedule of the tenant's published workflows."""
    items = await service.list_schedules(session, prefect, tenant_id=principal.tenant_id or "", workflow_id=workflow_id)
    return Page(items=[_public(s) for s in items], total=len(items))


@router.post("", response_model=SchedulePublic, status_code=status.HTTP_201_CREATED)
async def create_schedule(
    body: ScheduleCreate,
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    principal: Principal = Requires(Permission.SCHEDULE_MANAGE),
) -> SchedulePublic:
    """Add a schedule to a published workflow (republishing keeps only the graph's own)."""
    created = await service.create_schedule(
        session,
        prefect,
        tenant_id=principal.tenant_id or "",
        workflow_id=body.workflow_id,
        node_id=body.node_id,
        spec=body,
        context=context,
    )
    await session.commit()
    return _public(created)


@router.get("/{schedule_id}", response_model=SchedulePublic)
async def get_schedule(
    session: TenantSession,
    prefect: PrefectDep,
    schedule_id: str = ScheduleId,
    principal: Principal = Requires(Permission.SCHEDULE_READ),
) -> SchedulePublic:
    """One schedule with its next runs."""
    return _public(
        await service.get_schedule(session, prefect, tenant_id=principal.tenant_id or "", schedule_id=schedule_id)
    )


@router.put("/{schedule_id}", response_model=SchedulePublic)
async def update_schedule(
    body: ScheduleSpec,
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    schedule_id: str = ScheduleId,
    principal: Principal = Requires(Permission.SCHEDULE_MANAGE),
) -> SchedulePublic:
    """Change when a schedule fires (and whether it is active)."""
    updated = await service.update_schedule(
        session, prefect, tenant_id=principal.tenant_id or "", schedule_id=schedule_id, spec=body, context=context
    )
    await session.commit()
    return _public(updated)


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_schedule(
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    schedule_id: str = ScheduleId,
    principal: Principal = Requires(Permission.SCHEDULE_MANAGE),
) -> Response:
    """Remove a schedule (its queued runs go with it)."""
    await service.delete_schedule(
        session, prefect, tenant_id=principal.tenant_id or "", schedule_id=schedule_id, context=context
    )
    await session.commit()
    return Response(status_code=204)


@router.post("/{schedule_id}/pause", response_model=SchedulePublic)
async def pause_schedule(
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    schedule_id: str = ScheduleId,
    principal: Principal = Requires(Permission.SCHEDULE_MANAGE),
) -> SchedulePublic:
    """Stop a schedule (Prefect drops its queued runs)."""
    paused = await service.set_active(
        session, prefect, tenant_id=principal.tenant_id or "", schedule_id=schedule_id, active=False, context=context
    )
    await session.commit()
    return _public(paused)


@router.post("/{schedule_id}/resume", response_model=SchedulePublic)
async def resume_schedule(
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    schedule_id: str = ScheduleId,
    principal: Principal = Requires(Permission.SCHEDULE_MANAGE),
) -> SchedulePublic:
    """Start a schedule again; its upcoming runs are queued again right away."""
    resumed = await service.set_active(
        session, prefect, tenant_id=principal.tenant_id or "", schedule_id=schedule_id, active=True, context=context
    )
    await session.commit()
    return _public(resumed)


@router.post("/{schedule_id}/trigger", status_code=status.HTTP_202_ACCEPTED)
async def trigger_schedule(
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    schedule_id: str = ScheduleId,
    principal: Principal = Requires(Permission.EXECUTION_RUN),
) -> dict[str, Any]:
    """Run the schedule's workflow now, as if the schedule had fired."""
    execution_id = await service.trigger_schedule(
        session, prefect, tenant_id=principal.tenant_id or "", schedule_id=schedule_id, context=context
    )
    await session.commit()
    return {"execution_id": execution_id}
