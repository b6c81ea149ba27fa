"""A run its schedule queued does not run once that schedule is paused or deleted.

Prefect drops a schedule's queued runs when it is paused, but its scheduler reads a deployment's
schedules in one transaction and inserts the runs it computed in another: a schedule paused in
between still gets them. The API deletes the ones it can see right after a pause
(:func:`api.prefect.schedules.drop_queued_runs`); one inserted later starts here and ends at once
as Cancelled, named ``ScheduleOff``, before any node runs. One read of the deployment, for runs
a schedule created only.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext


async def schedule_off() -> str | None:
    """Why this run may not start (the schedule that queued it is off), or None."""
    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if run is None or not run.auto_scheduled or run.deployment_id is None:
        return None
    creator = run.created_by
    if creator is None or creator.type != "SCHEDULE" or creator.id is None:
        return None
    async with get_client() as client:
        deployment = await client.read_deployment(run.deployment_id)
    if deployment.paused:
        return "not run: its workflow was paused after this run was queued"
    schedule = next((s for s in deployment.schedules or [] if s.id == creator.id), None)
    if schedule is not None and schedule.active:
        return None
    what = "deleted" if schedule is None else "paused"
    return f"not run: its schedule {creator.display_value or creator.id} was {what} after this run was queued"
