"""The operations dashboard of a tenant: runs per minute, per-workflow durations and success,
its work queue's depth and the pool's worker health, webhook intake, and error budgets against
the SLOs its admins set.

Runs come from Prefect (tenant tag filters, as in :mod:`api.services.analytics`); deliveries and
SLOs from the Gorax database, always filtered on the tenant.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import utcnow
from api.errors import NotFound
from api.models.slo import WorkflowSlo
from api.models.workflows import Workflow
from api.prefect import PrefectClient, infra
from api.prefect import runs as prefect_runs
from api.services import analytics
from api.services.executions import run_filter, summary_of
from api.webhooks.models import WebhookDelivery
from flows import tenant_tag, work_queue_name

#: Windows the dashboard's per-workflow figures and intake totals cover.
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
#: The per-minute series cover the last hour.
SERIES_MINUTES = 60
#: Runs of the last hour read for the per-minute series.
MAX_SERIES_RUNS = 5000
#: Delivery verdicts by intake outcome.
ACCEPTED = ("accepted", "direct", "dispatched")
REJECTED = ("bad_signature",)
IGNORED = ("filtered", "duplicate")
#: Remaining budget below which a workflow's SLO is at risk.
AT_RISK_REMAINING = 0.25
FAILED_STATUSES = ("failed", "crashed")


def _minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def _minutes(now: datetime) -> list[datetime]:
    last = _minute(now)
    return [last - timedelta(minutes=SERIES_MINUTES - 1 - i) for i in range(SERIES_MINUTES)]


async def runs_per_minute(client: PrefectClient, *, tenant_id: str, now: datetime) -> tuple[list[dict[str, Any]], bool]:
    """The tenant's runs of the last hour per minute of their (expected) start, by outcome."""
    minutes = _minutes(now)
    flt = run_filter(tenant_id=tenant_id, since=minutes[0], until=now)
    found: list[Any] = []
    while len(found) < MAX_SERIES_RUNS:
        page = await prefect_runs.read_runs(client, flt, offset=len(found))
        found += page
        if len(page) < prefect_runs.PAGE:
            break
    truncated = len(found) >= MAX_SERIES_RUNS
    counts: dict[datetime, Counter[str]] = {m: Counter() for m in minutes}
    for run in found[:MAX_SERIES_RUNS]:
        at = run.start_time or run.expected_start_time
        bucket = counts.get(_minute(at)) if at is not None else None
        if bucket is None:
            continue
        status = summary_of(run)["status"]
        bucket["total"] += 1
        bucket[
            "completed" if status == "completed" else "failed" if status in (*FAILED_STATUSES, "timed_out") else "other"
        ] += 1
    series = [
        {"start": m, "total": c["total"], "completed": c["completed"], "failed": c["failed"], "other": c["other"]}
        for m, c in counts.items()
    ]
    return series, truncated


async def _count(client: PrefectClient, *, tenant_id: str, workflow_id: str, status: str, since: datetime) -> int:
    return await prefect_runs.count_runs(
        client, run_filter(tenant_id=tenant_id, workflow_id=workflow_id, status=status, since=since)
    )


def budget_of(target: float, good: int, bad: int) -> dict[str, Any]:
    """Error budget figures of ``good`` and ``bad`` finished runs against ``target``.

    The budget is the failures the target allows, ``(1 - target) * runs``; consumed is the
    failures over that (above 1: overspent), remaining ``1 - consumed``; the burn rate is the
    observed failure rate over the allowed one (1: the budget lasts exactly the window).
    """
    total = good + bad
    allowed = (1 - target) * total
    consumed = (bad / allowed) if allowed > 0 else 0.0
    error_rate = bad / total if total else None
    remaining = 1 - consumed
    state = (
        "no_data"
        if not total
        else "exhausted"
        if remaining <= 0
        else "at_risk"
        if remaining < AT_RISK_REMAINING
        else "ok"
    )
    return {
        "runs": total,
        "failed": bad,
        "success_rate": good / total if total else None,
        "allowed_failures": allowed,
        "consumed": consumed,
        "remaining": remaining,
        "burn_rate": (error_rate / (1 - target)) if error_rate is not None else None,
        "state": state,
    }


async def error_budget(client: PrefectClient, *, tenant_id: str, slo: WorkflowSlo, now: datetime) -> dict[str, Any]:
    """The budget of one SLO over its window, with the burn rate of the last hour."""
    since = now - timedelta(days=slo.window_days)
    hour = now - timedelta(hours=1)
    good = await _count(client, tenant_id=tenant_id, workflow_id=slo.workflow_id, status="completed", since=since)
    bad = 0
    bad_hour = good_hour = 0
    for status in FAILED_STATUSES:
        bad += await _count(client, tenant_id=tenant_id, workflow_id=slo.workflow_id, status=status, since=since)
        bad_hour += await _count(client, tenant_id=tenant_id, workflow_id=slo.workflow_id, status=status, since=hour)
    good_hour = await _count(client, tenant_id=tenant_id, workflow_id=slo.workflow_id, status="completed", since=hour)
    figures = budget_of(slo.target, good, bad)
    figures["burn_rate_1h"] = budget_of(slo.target, good_hour, bad_hour)["burn_rate"]
    return figures


async def webhook_intake(session: AsyncSession, *, tenant_id: str, since: datetime, now: datetime) -> dict[str, Any]:
    """Deliveries per minute of the last hour (accepted, rejected, ignored) and per verdict over
    ``since``..now."""
    minutes = _minutes(now)
    counts: dict[datetime, Counter[str]] = {m: Counter() for m in minutes}
    rows = await session.execute(
        select(WebhookDelivery.received_at, WebhookDelivery.status).where(
            WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.received_at >= minutes[0]
        )
    )
    for received_at, status in rows:
        bucket = counts.get(_minute(received_at))
        if bucket is not None:
            bucket["accepted" if status in ACCEPTED else "rejected" if status in REJECTED else "ignored"] += 1
    grouped = await session.execute(
        select(WebhookDelivery.status, func.count())
        .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.received_at >= since)
        .group_by(WebhookDelivery.status)
    )
    totals: dict[str, int] = {str(s): int(n) for s, n in grouped.all()}
    accepted = sum(totals.get(s, 0) for s in ACCEPTED)
    rejected = sum(totals.get(s, 0) for s in REJECTED)
    total = sum(totals.values())
    return {
        "per_minute": [
            {"start": m, "accepted": c["accepted"], "rejected": c["rejected"], "ignored": c["ignored"]}
            for m, c in counts.items()
        ],
        "by_status": {k: int(v) for k, v in sorted(totals.items())},
        "total": total,
        "accepted": accepted,
        "rejected": rejected,
        "ignored": total - accepted - rejected,
        "failure_rate": rejected / total if total else None,
    }


async def dashboard(
    client: PrefectClient, session: AsyncSession, *, tenant_id: str, window: str, work_pool: str
) -> dict[str, Any]:
    """Everything the operations page shows, for ``tenant_id`` over ``window``."""
    now = datetime.now(UTC)
    since = now - WINDOWS[window]
    workflows = {
        w.id: w
        for w in (
            await session.execute(
                select(Workflow).where(Workflow.tenant_id == tenant_id, Workflow.status != "archived")
            )
        ).scalars()
    }
    slos = {
        s.workflow_id: s
        for s in (await session.execute(select(WorkflowSlo).where(WorkflowSlo.tenant_id == tenant_id))).scalars()
    }
    series, truncated = await runs_per_minute(client, tenant_id=tenant_id, now=now)
    per_workflow = await analytics.workflow_analytics(client, tenant_id=tenant_id, since=since, until=now)
    stats = []
    for item in per_workflow["items"]:
        workflow = workflows.get(item["workflow_id"] or "")
        stats.append({**item, "workflow_name": workflow.name if workflow else item["workflow_name"]})
    budgets = []
    for workflow_id, slo in slos.items():
        workflow = workflows.get(workflow_id)
        if workflow is None:
            continue
        figures = await error_budget(client, tenant_id=tenant_id, slo=slo, now=now)
        budgets.append(
            {
                "workflow_id": workflow_id,
                "workflow_name": workflow.name,
                "target": slo.target,
                "window_days": slo.window_days,
                **figures,
            }
        )
    budgets.sort(key=lambda b: (b["remaining"], b["workflow_name"]))
    queue = await infra.queue_depth(
        client, pool=work_pool, queue=work_queue_name(tenant_id), tags=[tenant_tag(tenant_id)]
    )
    workers = await infra.worker_health(client, pool=work_pool, now=now)
    finished = [s for s in stats if s["success_rate"] is not None]
    done = sum(s["completed"] + s["failed"] for s in finished)
    return {
        "generated_at": now,
        "window": window,
        "since": since,
        "truncated": truncated or per_workflow["truncated"],
        "runs_per_minute": series,
        "runs_last_hour": sum(m["total"] for m in series),
        "success_rate": (sum(s["completed"] for s in finished) / done) if done else None,
        "workflows": stats,
        "error_budgets": budgets,
        "slo_candidates": [{"workflow_id": w.id, "workflow_name": w.name} for w in workflows.values()],
        "queues": [
            {
                "pool": queue.pool,
                "name": queue.name,
                "exists": queue.exists,
                "paused": queue.paused,
                "concurrency_limit": queue.concurrency_limit,
                "last_polled": queue.last_polled,
                **queue.counts,
                "workers": [w.__dict__ for w in workers],
            }
        ],
        "webhooks": await webhook_intake(session, tenant_id=tenant_id, since=since, now=now),
    }


async def set_slo(
    session: AsyncSession, *, tenant_id: str, workflow_id: str, target: float, window_days: int, actor: str
) -> tuple[WorkflowSlo, dict[str, Any] | None]:
    """Create or change a workflow's SLO; returns it and what it was before (None: new)."""
    workflow = (
        await session.execute(select(Workflow).where(Workflow.tenant_id == tenant_id, Workflow.id == workflow_id))
    ).scalar_one_or_none()
    if workflow is None:
        raise NotFound(f"workflow {workflow_id} not found", details={"workflow_id": workflow_id})
    slo = (
        await session.execute(
            select(WorkflowSlo).where(WorkflowSlo.tenant_id == tenant_id, WorkflowSlo.workflow_id == workflow_id)
        )
    ).scalar_one_or_none()
    before = None if slo is None else {"target": slo.target, "window_days": slo.window_days}
    if slo is None:
        slo = WorkflowSlo(tenant_id=tenant_id, workflow_id=workflow_id)
        session.add(slo)
    slo.target, slo.window_days, slo.updated_at, slo.updated_by = target, window_days, utcnow(), actor
    await session.flush()
    return slo, before


async def delete_slo(session: AsyncSession, *, tenant_id: str, workflow_id: str) -> dict[str, Any]:
    """Remove a workflow's SLO; returns what it was (NotFound when it has none)."""
    slo = (
        await session.execute(
            select(WorkflowSlo).where(WorkflowSlo.tenant_id == tenant_id, WorkflowSlo.workflow_id == workflow_id)
        )
    ).scalar_one_or_none()
    if slo is None:
        raise NotFound(f"workflow {workflow_id} has no SLO", details={"workflow_id": workflow_id})
    before = {"target": slo.target, "window_days": slo.window_days}
    await session.delete(slo)
    await session.flush()
    return before
