"""What the dead-letter sweep asks of Prefect: whether a deployment still exists, which
schedule-started runs never ran (Late) or crashed for good, and moving a Late one aside."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled

from flows import tenant_tag

#: The states of a schedule-started run that did not become a finished run: never started in
#: time (Late), or ended Crashed (the worker's rerun rule has given up on it).
STUCK_STATES = ("Late", "Crashed")
#: The tag :func:`api.services.executions.start_run` gives a run a schedule started.
SCHEDULE_TAG = "trigger:schedule"
#: How far back from the bound a sweep looks (by expected start), so that its reads of Prefect
#: stay bounded however many crashed runs its history holds.
LOOKBACK = timedelta(days=7)


async def deployment_exists(client: PrefectClient, deployment_id: str) -> bool:
    """Whether Prefect still has the deployment."""
    try:
        await client.read_deployment(UUID(deployment_id))
    except (ObjectNotFound, ValueError):
        return False
    return True


def started_by_schedule(run: FlowRun) -> bool:
    """A run Prefect's scheduler created, or one a schedule's "run now" started."""
    return bool(run.auto_scheduled) or SCHEDULE_TAG in (run.tags or [])


def state_time(run: FlowRun) -> datetime | None:
    """When the run entered its current state."""
    return run.state.timestamp if run.state else None


async def stuck_schedule_runs(
    client: PrefectClient, *, tenant_id: str | None, before: datetime, limit: int
) -> list[FlowRun]:
    """Gorax runs started by a schedule that are Late or Crashed since before ``before``
    (expected to start in the :data:`LOOKBACK` before it)."""
    tags = ["gorax"] if tenant_id is None else ["gorax", tenant_tag(tenant_id)]
    flt = FlowRunFilter(
        tags=FlowRunFilterTags(all_=tags),
        state=FlowRunFilterState(name=FlowRunFilterStateName(any_=list(STUCK_STATES))),
        expected_start_time=FlowRunFilterExpectedStartTime(after_=before - LOOKBACK, before_=before),
    )
    found: list[FlowRun] = []
    offset = 0
    while len(found) < limit:
        page = await client.read_flow_runs(
            flow_run_filter=flt, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=200, offset=offset
        )
        for run in page:
            when = state_time(run)
            if started_by_schedule(run) and when is not None and when < before:
                found.append(run)
        if len(page) < 200:
            break
        offset += 200
    return found[:limit]


async def set_aside(client: PrefectClient, run_id: str, message: str) -> Any:
    """Cancel a Late run so that a worker cannot still start it once it is a dead letter (its
    replay is a new run). A run that left Late meanwhile refuses the change (no force)."""
    return await client.set_flow_run_state(UUID(run_id), Cancelled(message=message))
