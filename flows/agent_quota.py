"""A tenant's monthly agent budgets: ``agent_tokens_per_month``, ``agent_cost_usd_per_month``,
``agent_tool_calls_per_month``.

The API mirrors the limits into the tenant's Prefect Variable
(:func:`flows.naming.tenant_quota_variable`, beside the monthly run quota). What agents use is
counted by the API in its database (``POST /internal/agent-usage``, an atomic increment that every
worker reaches, wherever it runs); an agent node reads the limits once, checks the count before
each model call (tokens, cost) and tool call (tool calls), and adds what each call used. Agents of
a tenant without agent limits make no such calls.
"""

from __future__ import annotations

from typing import Any

from flows.internal_api import post_internal
from flows.naming import tenant_quota_variable

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
    # Node-type discovery must not import Prefect (seconds): only a running agent needs it.
    from prefect.client.orchestration import get_client  # noqa: PLC0415

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
