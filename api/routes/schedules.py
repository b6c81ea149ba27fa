"""Schedules: the Prefect deployment schedules of the tenant's workflows.

``trigger.schedule`` nodes become schedules when a workflow is published (slug
``trigger-<node id>``); these routes list, add, change, delete, pause, resume and trigger them
through Prefect. A schedule's id is Prefect's. Prefect deletes a schedule's queued runs when it
is paused, so resuming asks Prefect to schedule the deployment's runs again right away.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.auth.deps import AuditCtx, Requires, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import BadRequest, NotFound
from api.models.workflows import Workflow
from api.schemas import Page
from api.services import audit
from flows.deploy import prefect_schedule
from translator.nodetypes import ScheduleSpec

log = logging.getLogger("gorax.api.schedules")
router = APIRouter(prefix="/schedules", tags=["schedules"])
ScheduleId = Path(max_length=64, description="The schedule's id (Prefect's).")


class ScheduleCreate(ScheduleSpec):
    """A new schedule of a published workflow."""

    workflow_id: str = Field(max_length=64)
    node_id: str | None = Field(default=None, max_length=100,
                                description="The trigger node the runs start from.")


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


def _node_of(schedule: Any) -> str | None:
    """The trigger node a deployment schedule belongs to (its slug is ``trigger-<node id>[-<n>]``;
    node ids hold no ``-``)."""
    slug = schedule.slug or ""
    return slug[len("trigger-"):].split("-")[0] if slug.startswith("trigger-") else None


def _public(workflow_id: str, schedule: Any) -> SchedulePublic:
    spec = schedule.schedule
    interval = getattr(spec, "interval", None)
    return SchedulePublic(
        id=str(schedule.id), workflow_id=workflow_id,
        node_id=_node_of(schedule),
        cron=getattr(spec, "cron", None),
        interval_seconds=int(interval.total_seconds()) if interval else None,
        timezone=getattr(spec, "timezone", None) or "UTC", active=schedule.active)


async def _workflows(session: Any, tenant_id: str, workflow_id: str | None = None) -> list[Workflow]:
    query = select(Workflow).where(Workflow.tenant_id == tenant_id,
                                   Workflow.deployment_id.is_not(None))
    if workflow_id:
        query = query.where(Workflow.id == workflow_id)
    return list((await session.execute(query)).scalars())


async def _find(client: Any, session: Any, tenant_id: str, schedule_id: str) -> tuple[Workflow, Any]:
    for workflow in await _workflows(session, tenant_id):
        for schedule in await client.read_deployment_schedules(UUID(workflow.deployment_id)):
            if str(schedule.id) == schedule_id:
                return workflow, schedule
    raise NotFound(f"schedule {schedule_id!r} not found", details={"schedule_id": schedule_id})


async def _reschedule(client: Any, deployment_id: str) -> None:
    # Prefect's scheduler would recreate the runs on its next loop; ask for them now. If Prefect
    # is too busy to answer, the schedule is active anyway and its scheduler catches up.
    try:
        response = await client.request("POST", f"/deployments/{deployment_id}/schedule",
                                        json={"min_runs": 3, "max_runs": 10})
        response.raise_for_status()
    except Exception as exc:
        log.warning("re-queueing the runs of deployment %s failed (%s); Prefect's scheduler "
                    "will create them", deployment_id, type(exc).__name__)


@router.get("", response_model=Page[SchedulePublic])
async def list_schedules(session: TenantSession,
                         workflow_id: str | None = Query(default=None, max_length=64),
                         principal: Principal = Requires(Permission.SCHEDULE_READ)) -> Page[SchedulePublic]:
    """Every schedule of the tenant's published workflows."""
    from prefect.client.orchestration import get_client

    items = []
    async with get_client() as client:
        for workflow in await _workflows(session, principal.tenant_id or "", workflow_id):
            for schedule in await client.read_deployment_schedules(UUID(workflow.deployment_id)):
                items.append(_public(workflow.id, schedule))
    return Page(items=items, total=len(items))


@router.post("", response_model=SchedulePublic, status_code=status.HTTP_201_CREATED)
async def create_schedule(body: ScheduleCreate, session: TenantSession, context: AuditCtx,
                          principal: Principal = Requires(Permission.SCHEDULE_MANAGE)) -> SchedulePublic:
    """Add a schedule to a published workflow (republishing keeps only the graph's own)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate

    found = await _workflows(session, principal.tenant_id or "", body.workflow_id)
    if not found:
        raise NotFound(f"no published workflow {body.workflow_id!r}",
                       details={"field": "workflow_id"})
    workflow = found[0]
    node_id = body.node_id
    if node_id is not None and not any(n.get("id") == node_id for n in workflow.graph.get("nodes", [])):
        raise BadRequest(f"the workflow has no node {node_id!r}", details={"field": "node_id"})
    async with get_client() as client:
        created = await client.create_deployment_schedules(UUID(workflow.deployment_id), [
            DeploymentScheduleCreate(schedule=prefect_schedule(body), active=body.active,
                                     parameters={"trigger_node": node_id} if node_id else {})])
    await audit.record(session, tenant_id=workflow.tenant_id, action="schedule.create",
                       context=context, resource_type="schedule", resource_id=str(created[0].id),
                       details={"workflow_id": workflow.id})
    await session.commit()
    return _public(workflow.id, created[0])


@router.get("/{schedule_id}", response_model=SchedulePublic)
async def get_schedule(session: TenantSession, schedule_id: str = ScheduleId,
                       principal: Principal = Requires(Permission.SCHEDULE_READ)) -> SchedulePublic:
    """One schedule with its next runs."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        workflow, schedule = await _find(client, session, principal.tenant_id or "", schedule_id)
        runs = await client.get_scheduled_flow_runs_for_deployments([UUID(workflow.deployment_id)], limit=5)
    public = _public(workflow.id, schedule)
    public.next_runs = sorted(r.expected_start_time for r in runs if r.expected_start_time)
    return public


@router.put("/{schedule_id}", response_model=SchedulePublic)
async def update_schedule(body: ScheduleSpec, session: TenantSession, context: AuditCtx,
                          schedule_id: str = ScheduleId,
                          principal: Principal = Requires(Permission.SCHEDULE_MANAGE)) -> SchedulePublic:
    """Change when a schedule fires (and whether it is active)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        workflow, schedule = await _find(client, session, principal.tenant_id or "", schedule_id)
        await client.update_deployment_schedule(UUID(workflow.deployment_id), schedule.id,
                                                schedule=prefect_schedule(body), active=body.active)
        workflow, schedule = await _find(client, session, principal.tenant_id or "", schedule_id)
    await audit.record(session, tenant_id=workflow.tenant_id, action="schedule.update",
                       context=context, resource_type="schedule", resource_id=schedule_id)
    await session.commit()
    return _public(workflow.id, schedule)


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_schedule(session: TenantSession, context: AuditCtx, schedule_id: str = ScheduleId,
                          principal: Principal = Requires(Permission.SCHEDULE_MANAGE)) -> Response:
    """Remove a schedule (its queued runs go with it)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        workflow, schedule = await _find(client, session, principal.tenant_id or "", schedule_id)
        await client.delete_deployment_schedule(UUID(workflow.deployment_id), schedule.id)
    await audit.record(session, tenant_id=workflow.tenant_id, action="schedule.delete",
                       context=context, resource_type="schedule", resource_id=schedule_id)
    await session.commit()
    return Response(status_code=204)


async def _set_active(session: Any, context: Any, principal: Principal, schedule_id: str,
                      active: bool) -> SchedulePublic:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        workflow, schedule = await _find(client, session, principal.tenant_id or "", schedule_id)
        await client.update_deployment_schedule(UUID(workflow.deployment_id), schedule.id,
                                                active=active)
        if active and workflow.status != "paused":
            await _reschedule(client, workflow.deployment_id)
        workflow, schedule = await _find(client, session, principal.tenant_id or "", schedule_id)
    await audit.record(session, tenant_id=workflow.tenant_id, context=context,
                       action="schedule.resume" if active else "schedule.pause",
                       resource_type="schedule", resource_id=schedule_id)
    await session.commit()
    return _public(workflow.id, schedule)


@router.post("/{schedule_id}/pause", response_model=SchedulePublic)
async def pause_schedule(session: TenantSession, context: AuditCtx, schedule_id: str = ScheduleId,
                         principal: Principal = Requires(Permission.SCHEDULE_MANAGE)) -> SchedulePublic:
    """Stop a schedule (Prefect drops its queued runs)."""
    return await _set_active(session, context, principal, schedule_id, False)


@router.post("/{schedule_id}/resume", response_model=SchedulePublic)
async def resume_schedule(session: TenantSession, context: AuditCtx, schedule_id: str = ScheduleId,
                          principal: Principal = Requires(Permission.SCHEDULE_MANAGE)) -> SchedulePublic:
    """Start a schedule again; its upcoming runs are queued again right away."""
    return await _set_active(session, context, principal, schedule_id, True)


@router.post("/{schedule_id}/trigger", status_code=status.HTTP_202_ACCEPTED)
async def trigger_schedule(session: TenantSession, context: AuditCtx, schedule_id: str = ScheduleId,
                           principal: Principal = Requires(Permission.EXECUTION_RUN)) -> dict[str, Any]:
    """Run the schedule's workflow now, as if the schedule had fired."""
    from prefect.client.orchestration import get_client

    from api.services.executions import start_run

    async with get_client() as client:
        workflow, schedule = await _find(client, session, principal.tenant_id or "", schedule_id)
        # Prefect may hand the schedule back without its parameters: fall back to the graph's
        # (first) schedule trigger, so the run starts from a schedule node, not the manual one.
        node = (schedule.parameters or {}).get("trigger_node") or _node_of(schedule)
        run = await start_run(client, tenant_id=workflow.tenant_id, workflow_id=workflow.id,
                              deployment_id=workflow.deployment_id, trigger_type="schedule",
                              trigger={"scheduled_at": datetime.now(timezone.utc).isoformat(),
                                       "schedule_id": schedule_id, "manual": True},
                              parameters={"trigger_node": node} if node else None)
    await audit.record(session, tenant_id=workflow.tenant_id, action="schedule.trigger",
                       context=context, resource_type="schedule", resource_id=schedule_id,
                       details={"execution_id": str(run.id)})
    await session.commit()
    return {"execution_id": str(run.id)}
