"""The monthly run quota for runs Prefect starts by itself (cron schedules, automations).

The API refuses a run it is asked to start past the tenant's quota; a run that Prefect created
(a schedule came due, an automation fired on a webhook event) is checked here when it starts:
past the quota it ends at once as Cancelled, named ``OverQuota``, with a message naming the
limit and when it resets. The API mirrors the quota into the Prefect Variable
:func:`flows.naming.tenant_quota_variable` (absent when unlimited: one read per such run).

The tenant's monthly agent budgets travel in the same Variable (:mod:`flows.agent_quota`).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterTags,
)
from prefect.concurrency.asyncio import concurrency
from prefect.exceptions import ObjectNotFound

from flows.naming import OVER_QUOTA_STATE, tenant_quota_variable, tenant_runs_limit, tenant_tag

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


async def run_slot(tenant: str | None, depth: int) -> AbstractAsyncContextManager[Any]:
    """One of the tenant's run slots, held while a top-level run executes (its concurrent-runs
    quota, a Prefect global concurrency limit): past the limit the run waits in it, Running.

    The limit is read first (a read): an unlimited tenant's is inactive or absent, and taking and
    giving back a slot of it would still be two writes on the Prefect server per run (each an
    ``UPDATE`` of ``concurrency_limit_v2``, serialized on SQLite) and a warning in the run's log.
    A sub-workflow runs inside its parent's slot (taking another could deadlock).
    """
    if depth > 0 or not tenant:
        return nullcontext()
    name = tenant_runs_limit(tenant)
    async with get_client() as client:
        try:
            limit = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return nullcontext()
    if not limit.active:
        return nullcontext()
    return concurrency(name, occupy=1, strict=False)
