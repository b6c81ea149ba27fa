"""Schedules: the Prefect deployment schedules of the tenant's published workflows.

Schedule triggers become schedules when a workflow is published (slug ``trigger-<node id>``);
these functions list, add, change, delete, pause, resume and trigger them through
:mod:`api.prefect.schedules`. A schedule's id is Prefect's; a schedule is found
only among the deployments of the tenant's own workflows. Every function takes ``tenant_id``
keyword-only and audits in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import BadRequest, NotFound
from api.models.workflows import Workflow
from api.prefect import PrefectClient
from api.prefect import schedules as prefect_schedules
from api.services import audit
from api.services.audit import AuditContext
from api.services.executions import start_run
from translator.nodetypes import ScheduleSpec


@dataclass(frozen=True)
class Schedule:
    """A schedule as the API shows it (before its next runs are read)."""

    id: str
    workflow_id: str
    node_id: str | None
    cron: str | None
    interval_seconds: int | None
    timezone: str
    active: bool
    next_runs: tuple[datetime, ...] = ()


def _public(workflow_id: str, schedule: Any, next_runs: tuple[datetime, ...] = ()) -> Schedule:
    spec = schedule.schedule
    interval = getattr(spec, "interval", None)
    return Schedule(
        id=str(schedule.id),
        workflow_id=workflow_id,
        node_id=prefect_schedules.node_of(schedule),
        cron=getattr(spec, "cron", None),
        interval_seconds=int(interval.total_seconds()) if interval else None,
        timezone=getattr(spec, "timezone", None) or "UTC",
        active=schedule.active,
        next_runs=next_runs,
    )


async def _workflows(session: AsyncSession, tenant_id: str, workflow_id: str | None = None) -> list[Workflow]:
    query = select(Workflow).where(Workflow.tenant_id == tenant_id, Workflow.deployment_id.is_not(None))
    if workflow_id:
        query = query.where(Workflow.id == workflow_id)
    return list((await session.execute(query)).scalars())


async def _find(
    prefect: PrefectClient, session: AsyncSession, tenant_id: str, schedule_id: str
) -> tuple[Workflow, Any]:
    for workflow in await _workflows(session, tenant_id):
        for schedule in await prefect_schedules.read_schedules(prefect, str(workflow.deployment_id)):
            if str(schedule.id) == schedule_id:
                return workflow, schedule
    raise NotFound(f"schedule {schedule_id!r} not found", details={"schedule_id": schedule_id})


async def list_schedules(
    session: AsyncSession, prefect: PrefectClient, *, tenant_id: str, workflow_id: str | None = None
) -> list[Schedule]:
    """Every schedule of the tenant's published workflows (of one, with ``workflow_id``)."""
    items = []
    for workflow in await _workflows(session, tenant_id, workflow_id):
        for schedule in await prefect_schedules.read_schedules(prefect, str(workflow.deployment_id)):
            items.append(_public(workflow.id, schedule))
    return items


async def get_schedule(session: AsyncSession, prefect: PrefectClient, *, tenant_id: str, schedule_id: str) -> Schedule:
    """One schedule with its next runs."""
    workflow, schedule = await _find(prefect, session, tenant_id, schedule_id)
    upcoming = await prefect_schedules.upcoming_runs(prefect, str(workflow.deployment_id))
    return _public(workflow.id, schedule, tuple(upcoming))


async def create_schedule(
    session: AsyncSession,
    prefect: PrefectClient,
    *,
    tenant_id: str,
    workflow_id: str,
    node_id: str | None,
    spec: ScheduleSpec,
    context: AuditContext,
) -> Schedule:
    """Add a schedule to a published workflow (republishing keeps only the graph's own)."""
    found = await _workflows(session, tenant_id, workflow_id)
    if not found:
        raise NotFound(f"no published workflow {workflow_id!r}", details={"field": "workflow_id"})
    workflow = found[0]
    if node_id is not None and not any(n.get("id") == node_id for n in workflow.graph.get("nodes", [])):
        raise BadRequest(f"the workflow has no node {node_id!r}", details={"field": "node_id"})
    created = await prefect_schedules.add_schedule(prefect, str(workflow.deployment_id), spec, node_id)
    await audit.record(
        session,
        tenant_id=workflow.tenant_id,
        action="schedule.create",
        context=context,
        resource_type="schedule",
        resource_id=str(created.id),
        details={"workflow_id": workflow.id},
    )
    return _public(workflow.id, created)


async def update_schedule(
    session: AsyncSession,
    prefect: PrefectClient,
    *,
    tenant_id: str,
    schedule_id: str,
    spec: ScheduleSpec,
    context: AuditContext,
) -> Schedule:
    """Change when a schedule fires (and whether it is active)."""
    workflow, schedule = await _find(prefect, session, tenant_id, schedule_id)
    await prefect_schedules.change_schedule(prefect, str(workflow.deployment_id), schedule.id, spec=spec)
    workflow, schedule = await _find(prefect, session, tenant_id, schedule_id)
    await audit.record(
        session,
        tenant_id=workflow.tenant_id,
        action="schedule.update",
        context=context,
        resource_type="schedule",
        resource_id=schedule_id,
    )
    return _public(workflow.id, schedule)


async def delete_schedule(
    session: AsyncSession, prefect: PrefectClient, *, tenant_id: str, schedule_id: str, context: AuditContext
) -> None:
    """Remove a schedule (its queued runs go with it)."""
    workflow, schedule = await _find(prefect, session, tenant_id, schedule_id)
    await prefect_schedules.delete_schedule(prefect, str(workflow.deployment_id), schedule.id)
    await prefect_schedules.drop_queued_runs(prefect, str(workflow.deployment_id), schedule.id)
    await audit.record(
        session,
        tenant_id=workflow.tenant_id,
        action="schedule.delete",
        context=context,
        resource_type="schedule",
        resource_id=schedule_id,
    )


async def set_active(
    session: AsyncSession,
    prefect: PrefectClient,
    *,
    tenant_id: str,
    schedule_id: str,
    active: bool,
    context: AuditContext,
) -> Schedule:
    """Pause or resume a schedule; a resumed one's upcoming runs are queued again at once
    (Prefect drops a schedule's queued runs when it is paused)."""
    workflow, schedule = await _find(prefect, session, tenant_id, schedule_id)
    await prefect_schedules.change_schedule(prefect, str(workflow.deployment_id), schedule.id, active=active)
    if not active:
        await prefect_schedules.drop_queued_runs(prefect, str(workflow.deployment_id), schedule.id)
    if active and workflow.status != "paused":
        await prefect_schedules.queue_runs_now(prefect, str(workflow.deployment_id))
    workflow, schedule = await _find(prefect, session, tenant_id, schedule_id)
    await audit.record(
        session,
        tenant_id=workflow.tenant_id,
        context=context,
        action="schedule.resume" if active else "schedule.pause",
        resource_type="schedule",
        resource_id=schedule_id,
    )
    return _public(workflow.id, schedule)


async def trigger_schedule(
    session: AsyncSession, prefect: PrefectClient, *, tenant_id: str, schedule_id: str, context: AuditContext
) -> str:
    """Run the schedule's workflow now, as if the schedule had fired; the execution id."""
    workflow, schedule = await _find(prefect, session, tenant_id, schedule_id)
    # Prefect may hand the schedule back without its parameters: fall back to the graph's
    # (first) schedule trigger, so the run starts from a schedule node, not the manual one.
    node = (schedule.parameters or {}).get("trigger_node") or prefect_schedules.node_of(schedule)
    run = await start_run(
        prefect,
        tenant_id=workflow.tenant_id,
        workflow_id=workflow.id,
        deployment_id=str(workflow.deployment_id),
        trigger_type="schedule",
        trigger={"scheduled_at": datetime.now(UTC).isoformat(), "schedule_id": schedule_id, "manual": True},
        parameters={"trigger_node": node} if node else None,
    )
    await audit.record(
        session,
        tenant_id=workflow.tenant_id,
        action="schedule.trigger",
        context=context,
        resource_type="schedule",
        resource_id=schedule_id,
        details={"execution_id": str(run.id)},
    )
    return str(run.id)
