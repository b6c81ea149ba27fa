"""Tenant quotas: runs per month, concurrent runs, webhook requests per minute, storage.

Each limit is the operator default (``GORAX_QUOTA_*``, 0 = unlimited) unless an operator set
the tenant its own (``gorax quotas set``, stored in ``tenant_quotas``). Where each is held:

- **runs_per_month**: counted from the tenant's Prefect flow runs expected to start this
  calendar month (UTC); the API refuses to start one past it (manual execute, retry) with 429
  ``QUOTA_EXCEEDED`` naming the limit, what was used and when it resets, plus ``Retry-After``.
  Runs Prefect starts by itself (schedules, automations) end Cancelled (``OverQuota``) when
  they start past it (:mod:`flows.quota`, from the quota mirrored into a Prefect Variable).
- **concurrent_runs**: the Prefect global concurrency limit ``gorax-tenant-<id>-runs``
  (:mod:`api.prefect.quotas`), kept equal to the quota; ``run_graph`` holds a slot of it,
  so Prefect makes the runs past it wait.
- **webhook_requests_per_minute**: counted by the API's rate limiter (Redis when configured)
  per tenant, across all its webhooks; past it the receiver answers 429.
- **storage_bytes**: estimated from what the tenant keeps in the Gorax database (workflow
  graphs, versions, draft edits, webhook deliveries); past it new runs and draft saves get 413.
- **agent_tokens_per_month**, **agent_cost_usd_per_month**, **agent_tool_calls_per_month**:
  counted in the Gorax database (``tenant_agent_usage``, one row per tenant and month) by the
  API, which every worker reaches (``POST /internal/agent-usage``, an atomic increment); the
  limits reach workers in the same Prefect Variable as the monthly run quota, and an agent node
  checks them before each model and tool call (:mod:`flows.agent_quota`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, cast, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.config import ApiSettings
from api.db.base import utcnow
from api.db.engine import Database
from api.errors import NotFound, PayloadTooLarge, RateLimited
from api.models.drafts import DraftUpdate
from api.models.identity import Tenant
from api.models.quotas import TenantAgentUsage, TenantQuota
from api.models.workflows import Workflow, WorkflowVersion
from api.prefect import PrefectClient, runs
from api.prefect.quotas import read_run_slots, set_month_quota, set_run_slots
from api.ratelimit import RateLimiter
from api.services import audit
from api.services.audit import AuditContext
from api.services.identity import get_tenant_by_ref
from api.webhooks.models import WebhookDelivery
from flows import tenant_tag
from flows.quota import month_filter, month_window

#: The limits, in the order they are shown, with the unit of each.
LIMITS: dict[str, str] = {
    "runs_per_month": "runs",
    "concurrent_runs": "runs",
    "webhook_requests_per_minute": "requests",
    "storage_bytes": "bytes",
    "agent_tokens_per_month": "tokens",
    "agent_cost_usd_per_month": "USD",
    "agent_tool_calls_per_month": "tool calls",
}
#: The agent limits, mirrored into the tenant's Prefect Variable for workers.
AGENT_LIMITS = ("agent_tokens_per_month", "agent_cost_usd_per_month", "agent_tool_calls_per_month")
#: The rate limiter's quota name of webhook requests.
WEBHOOK_QUOTA = "webhook_requests_per_minute"
#: How long this process trusts a tenant's limits read from the database (the webhook receiver
#: reads them per delivery); a change made here is seen at once, one made by the CLI within this.
CACHE_SECONDS = 30.0


class QuotaExceeded(RateLimited):
    """A tenant quota is used up until it resets (429, with Retry-After)."""

    code = "QUOTA_EXCEEDED"


class StorageQuotaExceeded(PayloadTooLarge):
    """The tenant keeps more than its storage quota (413)."""

    code = "QUOTA_EXCEEDED"


@dataclass(frozen=True)
class Limit:
    """One effective limit: its value (0 = unlimited) and where it comes from."""

    value: int | float  # float only for agent_cost_usd_per_month
    source: str  # "default" (the operator's GORAX_QUOTA_*) or "tenant" (set for this tenant)


def _defaults(config: ApiSettings) -> dict[str, int | float]:
    return {name: getattr(config, f"quota_{name}") for name in LIMITS}


_cache: dict[str, tuple[float, dict[str, Limit]]] = {}


async def effective_limits(session: AsyncSession, *, tenant_id: str, config: ApiSettings) -> dict[str, Limit]:
    """The tenant's limits: its own where set, else the operator defaults."""
    row = (await session.execute(select(TenantQuota).where(TenantQuota.tenant_id == tenant_id))).scalar_one_or_none()
    limits = {}
    for name, default in _defaults(config).items():
        own = getattr(row, name) if row is not None else None
        limits[name] = Limit(default, "default") if own is None else Limit(own, "tenant")
    _cache[tenant_id] = (time.monotonic(), limits)
    return limits


async def cached_limits(session: AsyncSession, *, tenant_id: str, config: ApiSettings) -> dict[str, Limit]:
    """:func:`effective_limits`, read at most every :data:`CACHE_SECONDS` per tenant."""
    entry = _cache.get(tenant_id)
    if entry is not None and time.monotonic() - entry[0] < CACHE_SECONDS:
        return entry[1]
    return await effective_limits(session, tenant_id=tenant_id, config=config)


def _retry_after(reset: datetime) -> str:
    return str(max(1, int((reset - datetime.now(UTC)).total_seconds())))


async def runs_this_month(client: PrefectClient, *, tenant_id: str) -> int:
    """The tenant's flow runs expected to start this month, up to now (scheduled ones later this
    month are not counted before their time; runs the quota held back are not counted)."""
    return await runs.count_runs(client, month_filter(tenant_id))


async def storage_used(session: AsyncSession, *, tenant_id: str) -> int:
    """Bytes the tenant keeps in the Gorax database (an estimate: JSON as stored text)."""
    parts = (
        select(func.sum(func.length(cast(Workflow.graph, Text)))).where(Workflow.tenant_id == tenant_id),
        select(func.sum(func.length(cast(WorkflowVersion.graph, Text)))).where(WorkflowVersion.tenant_id == tenant_id),
        select(func.sum(func.length(DraftUpdate.data))).where(DraftUpdate.tenant_id == tenant_id),
        select(
            func.sum(
                func.length(WebhookDelivery.body)
                + func.length(cast(WebhookDelivery.headers, Text))
                + func.coalesce(func.length(cast(WebhookDelivery.payload, Text)), 0)
            )
        ).where(WebhookDelivery.tenant_id == tenant_id),
    )
    total = 0
    for part in parts:
        total += int((await session.execute(part)).scalar() or 0)
    return total


async def check_storage(session: AsyncSession, *, tenant_id: str, config: ApiSettings, action: str) -> None:
    """:class:`StorageQuotaExceeded` (413) when the tenant keeps its storage quota or more."""
    limit = (await cached_limits(session, tenant_id=tenant_id, config=config))["storage_bytes"].value
    if limit <= 0:
        return
    used = await storage_used(session, tenant_id=tenant_id)
    if used >= limit:
        raise StorageQuotaExceeded(
            f"the tenant stores {used:,} bytes, at or past its storage quota of {limit:,} bytes "
            f"(storage_bytes): {action} is refused until workflows, versions or webhook deliveries are removed",
            details={"limit": "storage_bytes", "max": limit, "used": used},
        )


async def check_new_run(session: AsyncSession, client: PrefectClient, *, tenant_id: str, config: ApiSettings) -> None:
    """Refuse to start a run past the monthly run quota (429) or the storage quota (413)."""
    limits = await cached_limits(session, tenant_id=tenant_id, config=config)
    await sync_prefect(client, tenant_id=tenant_id, limits=limits)
    limit = limits["runs_per_month"].value
    if limit > 0:
        used = await runs_this_month(client, tenant_id=tenant_id)
        if used >= limit:
            _, reset = month_window()
            raise QuotaExceeded(
                f"the tenant has started {used:,} runs this month, its quota of {limit:,} (runs_per_month); "
                f"it resets at {reset.isoformat()}",
                details={"limit": "runs_per_month", "max": limit, "used": used, "resets_at": reset.isoformat()},
                headers={"Retry-After": _retry_after(reset)},
            )
    await check_storage(session, tenant_id=tenant_id, config=config, action="starting a run")


async def check_webhook(db: Database, limiter: RateLimiter, *, tenant_id: str, config: ApiSettings) -> None:
    """Count one delivery against the tenant's per-minute webhook quota (429 past it).

    On the receiver's path: the tenant's limits come from this process's cache (a database read
    at most every :data:`CACHE_SECONDS`), and an unlimited tenant costs no counting."""
    entry = _cache.get(tenant_id)
    if entry is not None and time.monotonic() - entry[0] < CACHE_SECONDS:
        limits = entry[1]
    else:
        async with db.tenant_scope(tenant_id=tenant_id) as session:
            limits = await effective_limits(session, tenant_id=tenant_id, config=config)
    limit = int(limits[WEBHOOK_QUOTA].value)
    if limit <= 0:
        return
    decision = await limiter.hit_quota(WEBHOOK_QUOTA, f"tenant:{tenant_id}", limit)
    if not decision.allowed:
        reset = datetime.fromtimestamp(decision.reset, UTC)
        used, _ = await limiter.quota_used(WEBHOOK_QUOTA, f"tenant:{tenant_id}")
        raise QuotaExceeded(
            f"the tenant's webhooks received more than {limit:,} requests this minute, its quota "
            f"({WEBHOOK_QUOTA}); it resets at {reset.isoformat()}",
            details={"limit": WEBHOOK_QUOTA, "max": limit, "used": used, "resets_at": reset.isoformat()},
            headers={"Retry-After": _retry_after(reset)},
        )


#: What this process last wrote to Prefect for each tenant (its run slots and mirrored limits).
_synced: dict[str, tuple[Any, ...]] = {}


async def sync_prefect(client: PrefectClient, *, tenant_id: str, limits: dict[str, Limit], force: bool = False) -> None:
    """Make Prefect hold the tenant's limits: its run slots (inactive when unlimited) and the
    monthly run quota its own runs are checked against."""
    mirrored = {name: limits[name].value for name in ("runs_per_month", *AGENT_LIMITS)}
    wanted = (limits["concurrent_runs"].value, *mirrored.values())
    if not force and _synced.get(tenant_id) == wanted:
        return
    await set_run_slots(client, tenant_id, int(limits["concurrent_runs"].value))
    await set_month_quota(client, tenant_id, mirrored)
    _synced[tenant_id] = wanted


async def set_quota(
    session: AsyncSession,
    *,
    tenant_id: str,
    values: dict[str, int | float | None],
    context: AuditContext,
) -> TenantQuota:
    """Set (int) or clear back to the default (None) some of the tenant's own limits; audited."""
    unknown = sorted(set(values) - set(LIMITS))
    if unknown:
        raise NotFound(f"no quota named {', '.join(unknown)}", details={"field": unknown[0]})
    row = (await session.execute(select(TenantQuota).where(TenantQuota.tenant_id == tenant_id))).scalar_one_or_none()
    if row is None:
        row = TenantQuota(tenant_id=tenant_id)
        session.add(row)
    before = {name: getattr(row, name) for name in LIMITS}
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    row.updated_by = context.actor_id
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="tenant.quota.set",
        context=context,
        resource_type="tenant",
        resource_id=tenant_id,
        before=before,
        after={name: getattr(row, name) for name in LIMITS},
    )
    _cache.pop(tenant_id, None)
    return row


async def usage(
    session: AsyncSession,
    client: PrefectClient,
    limiter: RateLimiter,
    *,
    tenant_id: str,
    config: ApiSettings,
) -> list[dict[str, Any]]:
    """Each limit of the tenant with what is used and when it resets (None: it does not)."""
    limits = await effective_limits(session, tenant_id=tenant_id, config=config)
    await sync_prefect(client, tenant_id=tenant_id, limits=limits)
    _, month_end = month_window()
    slots = await read_run_slots(client, tenant_id)
    if slots is not None and slots.active:
        running = slots.active_slots
    else:
        running = await runs.count_runs(client, runs.run_filter(tags=[tenant_tag(tenant_id)], state_types=["RUNNING"]))
    webhook_used, webhook_reset = await limiter.quota_used(WEBHOOK_QUOTA, f"tenant:{tenant_id}")
    used: dict[str, tuple[int | float, datetime | None]] = {
        "runs_per_month": (await runs_this_month(client, tenant_id=tenant_id), month_end),
        "concurrent_runs": (running, None),
        "webhook_requests_per_minute": (webhook_used, datetime.fromtimestamp(webhook_reset, UTC)),
        "storage_bytes": (await storage_used(session, tenant_id=tenant_id), None),
    }
    agents = await agent_usage(session, tenant_id=tenant_id)
    for name in AGENT_LIMITS:
        used[name] = (agents[name], month_end)
    return [
        {
            "name": name,
            "unit": unit,
            "limit": limits[name].value,
            "unlimited": limits[name].value == 0,
            "source": limits[name].source,
            "used": used[name][0],
            "resets_at": used[name][1],
        }
        for name, unit in LIMITS.items()
    ]


async def set_tenant_quota(
    db: Database,
    client: PrefectClient,
    *,
    tenant_ref: str,
    values: dict[str, int | float | None],
    config: ApiSettings,
    context: AuditContext,
) -> dict[str, Limit]:
    """What ``gorax quotas set`` does: store the tenant's own limits, then make its Prefect
    concurrency limit match; the tenant's effective limits afterwards."""
    async with db.system_scope() as session:
        tenant = await get_tenant_by_ref(session, tenant_ref)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_ref!r} (give its id or slug)", details={"tenant": tenant_ref})
        tenant_id = tenant.id
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        if values:
            await set_quota(session, tenant_id=tenant_id, values=values, context=context)
            await session.commit()
        limits = await effective_limits(session, tenant_id=tenant_id, config=config)
    await sync_prefect(client, tenant_id=tenant_id, limits=limits, force=True)
    return limits


async def sync_all(db: Database, client: PrefectClient, *, config: ApiSettings) -> int:
    """Make Prefect hold every tenant's limits (at API start: an operator default may have
    changed, and runs Prefect starts by itself never pass through the API). Returns how many."""
    async with db.system_scope() as session:
        tenant_ids = list((await session.execute(select(Tenant.id))).scalars())
        rows = {row.tenant_id: row for row in (await session.execute(select(TenantQuota))).scalars()}
    defaults = _defaults(config)
    for tenant_id in tenant_ids:
        row = rows.get(tenant_id)
        limits = {
            name: Limit(default, "default") if getattr(row, name, None) is None else Limit(getattr(row, name), "tenant")
            for name, default in defaults.items()
        }
        await sync_prefect(client, tenant_id=tenant_id, limits=limits)
    return len(tenant_ids)


def _month() -> str:
    start, _ = month_window()
    return start.strftime("%Y-%m")


def _agent_view(row: TenantAgentUsage | None) -> dict[str, Any]:
    return {
        "agent_tokens_per_month": int(row.tokens) if row else 0,
        "agent_cost_usd_per_month": round(float(row.cost_usd), 8) if row else 0.0,
        "agent_tool_calls_per_month": int(row.tool_calls) if row else 0,
    }


async def agent_usage(session: AsyncSession, *, tenant_id: str) -> dict[str, Any]:
    """What the tenant's agents used this month: tokens, cost (USD) and tool calls."""
    row = (
        await session.execute(
            select(TenantAgentUsage).where(TenantAgentUsage.tenant_id == tenant_id, TenantAgentUsage.month == _month())
        )
    ).scalar_one_or_none()
    return _agent_view(row)


async def add_agent_usage(
    db: Database, *, tenant_id: str, tokens: int, cost_usd: float, tool_calls: int
) -> dict[str, Any]:
    """Add what an agent used to the tenant's count of this month (an atomic increment: workers
    record at once without losing any); the count afterwards. Zero amounts only read it."""
    month = _month()
    where = (TenantAgentUsage.tenant_id == tenant_id, TenantAgentUsage.month == month)
    for _ in range(3):
        async with db.tenant_scope(tenant_id=tenant_id) as session:
            if tokens or cost_usd or tool_calls:
                result = await session.execute(
                    update(TenantAgentUsage)
                    .where(*where)
                    .values(
                        tokens=TenantAgentUsage.tokens + tokens,
                        cost_usd=TenantAgentUsage.cost_usd + cost_usd,
                        tool_calls=TenantAgentUsage.tool_calls + tool_calls,
                        updated_at=utcnow(),
                    )
                )
                if getattr(result, "rowcount", 0) == 0:
                    session.add(
                        TenantAgentUsage(
                            tenant_id=tenant_id, month=month, tokens=tokens, cost_usd=cost_usd, tool_calls=tool_calls
                        )
                    )
                try:
                    await session.commit()
                except IntegrityError:  # another worker made this month's row meanwhile: add to it
                    await session.rollback()
                    continue
            return await agent_usage(session, tenant_id=tenant_id)
    raise RuntimeError(f"the agent usage of tenant {tenant_id} could not be recorded")
