"""The monthly run quota for runs Prefect starts by itself (cron schedules, automations).

The API refuses a run it is asked to start past the tenant's quota; a run that Prefect created
(a schedule came due, an automation fired on a webhook event) is checked here when it starts:
past the quota it ends at once as Cancelled, named ``OverQuota``, with a message naming the
limit and when it resets. The API mirrors the quota into the Prefect Variable
:func:`flows.naming.tenant_quota_variable` (absent when unlimited: one read per such run).

The tenant's monthly agent budgets travel in the same Variable (:mod:`flows.agent_quota`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterTags,
)

from flows.naming import OVER_QUOTA_STATE, tenant_quota_variable, tenant_tag

#: Run trigger tags of runs the API started (and checked) itself.
API_STARTED = ("trigger:manual", "trigger:retry")


def month_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The current calendar month (UTC): its start and the next month's start."""
    now = now or datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start + timedelta(days=32)).replace(day=1)


def month_filter(tenant: str) -> FlowRunFilter:
    """The tenant's runs expected to start this month up to now, less those held by the quota."""
    start, _ = month_window()
    return FlowRunFilter(
        tags=FlowRunFilterTags(all_=[tenant_tag(tenant)]),
        expected_start_time=FlowRunFilterExpectedStartTime(
            after_=start, before_=datetime.now(UTC) + timedelta(minutes=1)
        ),
        state=FlowRunFilterState(name=FlowRunFilterStateName(not_any_=[OVER_QUOTA_STATE])),
    )


async def over_month_quota(tenant: str, tags: list[str]) -> str | None:
    """Why this run may not start (its tenant is past its monthly run quota), or None."""
    if any(tag in tags for tag in API_STARTED):
        return None
    async with get_client() as client:
        mirrored = await client.read_variable_by_name(tenant_quota_variable(tenant))
        value = mirrored.value if mirrored is not None else None
        limit = int(value.get("runs_per_month") or 0) if isinstance(value, dict) else 0
        if limit <= 0:
            return None
        used = await client.count_flow_runs(flow_run_filter=month_filter(tenant))
    if used <= limit:  # this run is one of them
        return None
    _, reset = month_window()
    return (
        f"not run: the tenant has started {used - 1:,} runs this month, its quota of {limit:,} "
        f"(runs_per_month); it resets at {reset.isoformat()}"
    )
