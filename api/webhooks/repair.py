"""Repairing lost webhook events: an explicit, rare maintenance job (``gorax webhooks repair``).

A delivery reaches its run through its event and the workflow's automation only
(:mod:`api.webhooks.dispatcher`). Prefect acknowledges an event before its triggers have
evaluated it, so an event can still be lost: one taken just after Prefect restarted, before its
triggers service subscribed, or evaluated a moment before the triggers service loaded the
workflow's automation. Such a delivery stays ``dispatched`` without a run. :func:`repair` finds
the ones dispatched more than ``older_than`` seconds ago and, for each:

- looks for its run once more (a run's ``trigger.delivery_id`` parameter names its delivery)
  and links the delivery to it when there is one;
- leaves it as it is when its workflow is paused (reported as waiting) or gone, archived or not
  deployed (reported as skipped);
- otherwise posts its event again, with the *same* event id.

One repair runs at a time across API replicas and CLIs: on PostgreSQL it holds a transaction's
advisory lock (a second repair reports that one is running and does nothing), and every
repost is claimed first with a conditional update that only one claimant can win (the guard
SQLite, which has no advisory locks, relies on). The check for a run happens under the lock
right before the repost. Should the original event still be on its way, Prefect evaluates one
of the two copies: its triggers drop an event id they evaluated in the last 30 minutes. The
repair's default age (``webhook_repair_after_seconds``, one hour) is past that retention, so
the repost is not dropped for an event whose evaluation found no automation; the run check
covers what the retention no longer does (docs/adr/0001-webhook-route.md).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Text, cast, select, text, update

from api.db.base import utcnow
from api.db.engine import Database
from api.models.workflows import Workflow
from api.prefect import PrefectClient
from api.prefect import events as prefect_events
from api.services import audit
from api.services.audit import AuditContext
from api.webhooks.dispatcher import events_json, find_runs, link_runs
from api.webhooks.models import WebhookDelivery

log = logging.getLogger("gorax.webhooks.repair")

#: The oldest age a repair takes (ten years, in seconds).
MAX_AGE = 10 * 366 * 24 * 3600.0
#: The advisory lock every repair takes (PostgreSQL).
LOCK_KEY = "gorax:webhook-repair"
#: Delivery ids an audit event lists per outcome; the counts are always complete.
_AUDIT_IDS = 100


@dataclass
class RepairReport:
    """What a repair found and did (with ``dry_run``: what it would do)."""

    older_than: float
    dry_run: bool
    busy: bool = False
    checked: int = 0
    linked: dict[str, str] = field(default_factory=dict)  # delivery id -> the run found
    reposted: list[str] = field(default_factory=list)  # delivery ids whose event was posted again
    waiting: list[str] = field(default_factory=list)  # their workflow is paused
    skipped: dict[str, str] = field(default_factory=dict)  # delivery id -> why not reposted

    def as_dict(self) -> dict[str, Any]:
        return {
            "older_than_seconds": self.older_than,
            "dry_run": self.dry_run,
            "busy": self.busy,
            "checked": self.checked,
            "linked": self.linked,
            "reposted": self.reposted,
            "waiting": self.waiting,
            "skipped": self.skipped,
        }

    def lines(self) -> list[str]:
        """The report for people."""
        if self.busy:
            return ["another webhook repair is running; nothing was done"]
        repost = "would repost" if self.dry_run else "reposted"
        lines = [f"{self.checked} deliveries dispatched over {self.older_than:g} s ago without a run"]
        lines += [f"linked    {d} -> run {r}" for d, r in self.linked.items()]
        lines += [f"{repost:<9} {d}" for d in self.reposted]
        lines += [f"waiting   {d} (its workflow is paused)" for d in self.waiting]
        lines += [f"skipped   {d} ({why})" for d, why in self.skipped.items()]
        lines.append(
            f"{len(self.linked)} linked, {len(self.reposted)} {repost}, "
            f"{len(self.waiting)} waiting, {len(self.skipped)} skipped"
        )
        return lines


@asynccontextmanager
async def _exclusive(db: Database) -> AsyncIterator[bool]:
    """Whether this repair may run (False: another one holds the lock), for the block's length."""
    if db.dialect != "postgresql":
        yield True  # SQLite: one API process; the claim below guards a concurrent CLI
        return
    async with db.system_scope() as session:
        held = (
            await session.execute(text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": LOCK_KEY})
        ).scalar_one()
        try:
            yield bool(held)
        finally:
            await session.rollback()  # ends the transaction: releases the lock


def _candidates(older_than: float, tenant_id: str | None, limit: int) -> Any:
    d = WebhookDelivery
    query = (
        select(
            d.seq,
            d.id,
            d.tenant_id,
            d.workflow_id,
            d.node_id,
            d.webhook_id,
            d.received_at,
            d.dispatched_at,
            cast(d.payload, Text).label("payload"),
        )
        .where(d.status == "dispatched", d.run_id.is_(None), d.dispatched_at < utcnow() - timedelta(seconds=older_than))
        .order_by(d.seq)
        .limit(limit)
    )
    return query if tenant_id is None else query.where(d.tenant_id == tenant_id)


async def repair(
    db: Database,
    prefect: PrefectClient,
    *,
    older_than: float,
    dry_run: bool = False,
    tenant_id: str | None = None,
    limit: int = 1000,
    context: AuditContext | None = None,
) -> RepairReport:
    """Repair deliveries dispatched over ``older_than`` seconds ago without a run (only
    ``tenant_id``'s when given, at most ``limit``); see the module's docstring."""
    if not 0 <= older_than <= MAX_AGE:
        raise ValueError(f"older_than must be between 0 and {MAX_AGE:g} seconds, not {older_than}")
    report = RepairReport(older_than=older_than, dry_run=dry_run)
    async with _exclusive(db) as held:
        if not held:
            report.busy = True
            return report
        async with db.system_scope() as session:
            rows = list((await session.execute(_candidates(older_than, tenant_id, limit))).all())
            query = select(Workflow.id, Workflow.status, Workflow.deployment_id).where(
                Workflow.id.in_({row.workflow_id for row in rows})
            )
            workflows = {workflow.id: workflow for workflow in (await session.execute(query)).all()}
        report.checked = len(rows)
        if not rows:
            return report
        # Under the lock, right before reposting: a run that appeared meanwhile is linked.
        found = await find_runs(prefect, rows)
        due = []
        for row in rows:
            workflow = workflows.get(row.workflow_id)
            if row.seq in found:
                report.linked[row.id] = found[row.seq]
            elif workflow is None:
                report.skipped[row.id] = "its workflow no longer exists"
            elif workflow.status == "paused":
                report.waiting.append(row.id)
            elif workflow.status != "active" or not workflow.deployment_id:
                report.skipped[row.id] = f"its workflow is {workflow.status}, with no deployment to run"
            else:
                due.append(row)
        if dry_run:
            report.reposted = [row.id for row in due]
            return report
        if found:
            await link_runs(db, found)
        if due:
            due = await _claim(db, due, older_than)
            report.reposted = [row.id for row in due]
            if due:
                await prefect_events.post_events(prefect, events_json(due))
        await _audit(db, report, rows, context or AuditContext.system("webhook-repair"))
    if report.reposted:
        log.warning("webhook repair posted the events of %d deliveries again", len(report.reposted))
    return report


async def _claim(db: Database, due: list[Any], older_than: float) -> list[Any]:
    """The deliveries of ``due`` this repair reposts: each is marked dispatched now, if it still
    is an old one without a run (a concurrent repair that marked it first wins)."""
    d = WebhookDelivery
    async with db.system_scope() as session:
        claimed = set(
            (
                await session.execute(
                    update(d)
                    .where(
                        d.seq.in_([row.seq for row in due]),
                        d.status == "dispatched",
                        d.run_id.is_(None),
                        d.dispatched_at < utcnow() - timedelta(seconds=older_than),
                    )
                    .values(dispatched_at=utcnow(), attempts=d.attempts + 1)
                    .returning(d.seq)
                    .execution_options(synchronize_session=False)
                )
            ).scalars()
        )
        await session.commit()
    return [row for row in due if row.seq in claimed]


async def _audit(db: Database, report: RepairReport, rows: list[Any], context: AuditContext) -> None:
    """One ``webhook.repair`` event in each tenant's log whose deliveries were linked or reposted."""
    tenant_of = {row.id: row.tenant_id for row in rows}
    by_tenant: dict[str, dict[str, list[str]]] = {}
    for outcome, ids in (("linked", list(report.linked)), ("reposted", report.reposted)):
        for delivery_id in ids:
            by_tenant.setdefault(tenant_of[delivery_id], {"linked": [], "reposted": []})[outcome].append(delivery_id)
    for tenant_id, outcomes in by_tenant.items():
        await audit.record_now(
            db,
            tenant_id=tenant_id,
            action="webhook.repair",
            context=context,
            resource_type="webhook_delivery",
            details={
                "older_than_seconds": report.older_than,
                **{f"{k}_count": len(v) for k, v in outcomes.items()},
                **{k: v[:_AUDIT_IDS] for k, v in outcomes.items()},
            },
        )
