"""The monthly run quota for runs Prefect starts by itself (cron schedules, automations).

The API refuses a run it is asked to start past the tenant's quota; a run that Prefect created
(a schedule came due, an automation fired on a webhook event) is checked here when it starts:
past the quota it ends at once as Cancelled, named ``OverQuota``, with a message naming the
limit and when it resets. The API mirrors the quota into the Prefect Variable
:func:`flows.naming.tenant_quota_variable` (absent when unlimited: one read per such run).

Agent budgets per tenant (``agent_tokens_per_month``, ``agent_cost_usd_per_month``,
``agent_tool_calls_per_month``) travel in the same Variable. What agents use is counted by the
API in its database (``POST /internal/agent-usage``, an atomic increment every worker reaches);
an agent node reads the limits once, checks the count before each model and tool call and adds
what it used after. Agents of a tenant without agent limits make no such calls.
"""

from __future__ import annotations

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

from flows.internal_api import post_internal
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


#: The agent limits and how an error names their amounts.
AGENT_LIMITS: dict[str, str] = {
    "agent_tokens_per_month": "{:,} tokens",
    "agent_cost_usd_per_month": "${:,.6f}",
    "agent_tool_calls_per_month": "{:,} tool calls",
}


class AgentQuotaExceeded(RuntimeError):
    """The tenant's agents used up a monthly agent limit."""


async def agent_limits(tenant: str) -> dict[str, float]:
    """The tenant's agent limits that are set (empty: unlimited, nothing to count)."""
    async with get_client() as client:
        mirrored = await client.read_variable_by_name(tenant_quota_variable(tenant))
    value = mirrored.value if mirrored is not None else None
    if not isinstance(value, dict):
        return {}
    return {name: float(value[name]) for name in AGENT_LIMITS if float(value.get(name) or 0) > 0}


async def agent_usage(tenant: str, *, tokens: int = 0, cost_usd: float = 0.0, tool_calls: int = 0) -> dict[str, Any]:
    """Add what an agent used to the tenant's month (nothing: only read); the count after."""
    payload = {"tenant_id": tenant, "tokens": tokens, "cost_usd": cost_usd, "tool_calls": tool_calls}
    return dict(await post_internal("agent-usage", payload))


#: What a model call is checked against; a tool call is checked against its own count.
MODEL_LIMITS = ("agent_tokens_per_month", "agent_cost_usd_per_month")
TOOL_LIMITS = ("agent_tool_calls_per_month",)


def agent_over(
    used: dict[str, Any], limits: dict[str, float], *, names: tuple[str, ...], node: str, before: str
) -> str | None:
    """Why an agent may not make its next call (one of ``names`` reached), or None."""
    for name in names:
        shown = AGENT_LIMITS[name]
        limit = limits.get(name)
        if limit is not None and float(used[name]) >= limit:
            return (
                f"node '{node}': the tenant's {name} quota is used up: {shown.format(used[name])} used "
                f"this month of {shown.format(limit if name == 'agent_cost_usd_per_month' else int(limit))}; "
                f"refused before {before}; it resets at {used['resets_at']}"
            )
    return None
