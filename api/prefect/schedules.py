"""Deployment schedules: read, add, change, delete, and ask Prefect to queue their runs now.

A schedule trigger's schedules carry the slug ``trigger-<node id>[-<n>]`` (see
:func:`api.prefect.deployments.schedules_of`); a schedule added through the API names its node
in its parameters.
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import DeploymentSchedule, StateType
from prefect.exceptions import ObjectNotFound

from api.prefect.deployments import prefect_schedule
from translator.nodetypes import ScheduleSpec

log = logging.getLogger("gorax.prefect.schedules")


def node_of(schedule: DeploymentSchedule) -> str | None:
    """The trigger node a schedule trigger's schedule belongs to (its slug is
    ``trigger-<node id>[-<n>]``; node ids hold no ``-``)."""
    slug = schedule.slug or ""
    return slug[len("trigger-") :].split("-")[0] if slug.startswith("trigger-") else None


async def read_schedules(client: PrefectClient, deployment_id: str) -> list[DeploymentSchedule]:
    """The deployment's schedules."""
    return await client.read_deployment_schedules(UUID(deployment_id))


async def add_schedule(
    client: PrefectClient, deployment_id: str, spec: ScheduleSpec, node_id: str | None
) -> DeploymentSchedule:
    """A new schedule of the deployment, starting its runs from ``node_id`` (when given)."""
    created = await client.create_deployment_schedules(
        UUID(deployment_id),
        [
            DeploymentScheduleCreate(
                schedule=prefect_schedule(spec),
                active=spec.active,
                parameters={"trigger_node": node_id} if node_id else {},
            )
        ],
    )
    return created[0]


async def change_schedule(
    client: PrefectClient,
    deployment_id: str,
    schedule_id: UUID,
    *,
    spec: ScheduleSpec | None = None,
    active: bool | None = None,
) -> None:
    """Change when a schedule fires (``spec``, its ``active`` too) or only whether it is active."""
    if spec is not None:
        await client.update_deployment_schedule(
            UUID(deployment_id), schedule_id, schedule=prefect_schedule(spec), active=spec.active
        )
    else:
        await client.update_deployment_schedule(UUID(deployment_id), schedule_id, active=active)


async def drop_queued_runs(client: PrefectClient, deployment_id: str, schedule_id: UUID) -> int:
    """Delete the runs ``schedule_id`` queued that have not started; how many.

    Prefect drops them itself when a schedule is paused or deleted, but its scheduler may insert
    runs it computed just before (it reads and inserts in separate transactions): this removes
    those it has inserted by now; a later one ends ``ScheduleOff`` when it starts.
    """
    queued = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[UUID(deployment_id)])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
            tags=FlowRunFilterTags(all_=["auto-scheduled"]),
        ),
    )
    dropped = 0
    for run in queued:
        if run.run_count == 0 and run.created_by is not None and run.created_by.id == schedule_id:
            try:
                await client.delete_flow_run(run.id)
            except ObjectNotFound:  # it started, or Prefect dropped it meanwhile
                continue
            dropped += 1
    return dropped


async def delete_schedule(client: PrefectClient, deployment_id: str, schedule_id: UUID) -> None:
    """Delete a schedule (its queued runs go with it)."""
    await client.delete_deployment_schedule(UUID(deployment_id), schedule_id)


async def upcoming_runs(client: PrefectClient, deployment_id: str, *, limit: int = 5) -> list[datetime]:
    """When the deployment's next scheduled runs are expected, soonest first."""
    runs = await client.get_scheduled_flow_runs_for_deployments([UUID(deployment_id)], limit=limit)
    return sorted(r.expected_start_time for r in runs if r.expected_start_time)


async def queue_runs_now(client: PrefectClient, deployment_id: str) -> None:
    """Ask Prefect to create the deployment's next scheduled runs now, not at its scheduler's next
    loop (Prefect drops a schedule's queued runs when it is paused).

    Prefect's client has no method for this endpoint. When Prefect is too busy to answer, the
    schedule is active anyway and its scheduler catches up: that is logged, not raised.
    """
    try:
        response = await client.request(
            "POST",
            "/deployments/{id}/schedule",  # type: ignore[arg-type]
            path_params={"id": deployment_id},
            json={"min_runs": 3, "max_runs": 10},
        )
        response.raise_for_status()
    except Exception as exc:
        log.warning(
            "re-queueing the runs of deployment %s failed (%s); Prefect's scheduler will create them",
            deployment_id,
            type(exc).__name__,
        )
