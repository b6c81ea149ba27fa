"""Retention: per-tenant policies and the job that deletes what they say is old, in batches.

What goes, per tenant:

- executions: finished Prefect flow runs (with their task runs, logs and artifacts) expected to
  start more than ``execution_days`` ago, and, per workflow, all but the newest
  ``executions_per_workflow`` finished runs; running and waiting runs are never touched;
- step data: the inputs and outputs of the step records of runs older than ``step_data_days``
  (the records, their status, times and errors stay as long as the run);
- webhook deliveries: records older than ``delivery_days`` and, per webhook, all but the newest
  ``deliveries_per_webhook`` (a delivery still waiting for dispatch stays);
- audit events older than ``audit_days`` (at least the operator's minimum), never the newest;
  the chain is anchored at the last pruned event so it stays verifiable.

The operator's settings (``GORAX_RETENTION_*``) give each value's default and its bound: a tenant
admin may choose any value up to the maximum (audit: down to the minimum). Every delete is a
batch of at most ``GORAX_RETENTION_BATCH_SIZE`` rows or runs, with a pause between batches; a
run is idempotent (what is gone is not found again). Each run stores a report and, when it
deleted something or a person asked for it, the audit event ``retention.pruned``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from api.config import ApiSettings
from api.db.base import new_id, utcnow
from api.db.engine import Database
from api.errors import BadRequest, Conflict
from api.models.audit import AuditAnchor, AuditEvent
from api.models.identity import Tenant
from api.models.retention import RetentionPolicy, RetentionRun
from api.models.workflows import Workflow
from api.prefect import PrefectClient
from api.prefect import retention as prefect_retention
from api.services import audit
from api.services.audit import AuditContext
from api.webhooks.models import WebhookDelivery
from flows import tenant_tag, tenant_test_tag, workflow_tag, workflow_test_tag

log = logging.getLogger("gorax.retention")

SYSTEM = AuditContext.system("retention")

#: The policy's fields, in the order the API shows them.
FIELDS = (
    "execution_days",
    "executions_per_workflow",
    "step_data_days",
    "delivery_days",
    "deliveries_per_webhook",
    "audit_days",
)
#: The report's counters.
COUNTERS = ("executions", "step_records", "webhook_deliveries", "audit_events")

#: The key of the advisory lock one replica holds while it sweeps every tenant.
_SWEEP_LOCK = "gorax:retention"


@dataclass(frozen=True)
class Bound:
    """What the operator allows for one field: its default and the range a tenant may choose."""

    default: int
    minimum: int
    maximum: int | None


def bounds(config: ApiSettings) -> dict[str, Bound]:
    """Each policy field's default and allowed range, from the operator's settings."""
    return {
        "execution_days": Bound(config.retention_execution_days, 1, config.retention_execution_max_days),
        "executions_per_workflow": Bound(
            config.retention_executions_per_workflow, 1, config.retention_executions_per_workflow_max
        ),
        "step_data_days": Bound(config.retention_step_data_days, 1, config.retention_step_data_max_days),
        "delivery_days": Bound(config.retention_delivery_days, 1, config.retention_delivery_max_days),
        "deliveries_per_webhook": Bound(
            config.retention_deliveries_per_webhook, 1, config.retention_deliveries_per_webhook_max
        ),
        "audit_days": Bound(
            max(config.retention_audit_days, config.retention_audit_min_days), config.retention_audit_min_days, None
        ),
    }


def _clamp(value: int, bound: Bound) -> int:
    value = max(value, bound.minimum)
    return min(value, bound.maximum) if bound.maximum is not None else value


@dataclass(frozen=True)
class Policy:
    """A tenant's retention: what it chose (None: the default) and what applies."""

    chosen: dict[str, int | None]
    effective: dict[str, int]
    bounds: dict[str, Bound]
    updated_at: datetime | None
    updated_by: str | None


def _policy(row: RetentionPolicy | None, config: ApiSettings) -> Policy:
    limits = bounds(config)
    chosen = {name: getattr(row, name) if row else None for name in FIELDS}
    # A choice made under a looser operator bound follows the bound as it is now.
    effective = {name: _clamp(chosen[name] or limits[name].default, limits[name]) for name in FIELDS}
    return Policy(chosen, effective, limits, row.updated_at if row else None, row.updated_by if row else None)


async def _row(session: AsyncSession, tenant_id: str) -> RetentionPolicy | None:
    return (
        await session.execute(select(RetentionPolicy).where(RetentionPolicy.tenant_id == tenant_id))
    ).scalar_one_or_none()


async def get_policy(session: AsyncSession, *, tenant_id: str, config: ApiSettings) -> Policy:
    """The tenant's policy (defaults where it chose nothing)."""
    return _policy(await _row(session, tenant_id), config)


async def set_policy(
    session: AsyncSession,
    *,
    tenant_id: str,
    values: dict[str, int | None],
    config: ApiSettings,
    context: AuditContext,
) -> Policy:
    """Store the tenant's choices (None: back to the default); BadRequest naming the field and
    its bound for a value outside what the operator allows. Audited, committed."""
    limits = bounds(config)
    for name, value in values.items():
        if value is None:
            continue
        bound = limits[name]
        if value < bound.minimum or (bound.maximum is not None and value > bound.maximum):
            allowed = f"{bound.minimum}..{bound.maximum}" if bound.maximum is not None else f">= {bound.minimum}"
            raise BadRequest(
                f"retention {name} must be {allowed} (the operator's bound), not {value}",
                details={"field": name, "value": value, "minimum": bound.minimum, "maximum": bound.maximum},
            )
    row = await _row(session, tenant_id)
    before = {name: getattr(row, name) if row else None for name in FIELDS}
    if row is None:
        row = RetentionPolicy(id=new_id(), tenant_id=tenant_id)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    row.updated_by = f"{context.actor_type}:{context.actor_id}"
    after = {name: getattr(row, name) for name in FIELDS}
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="retention.policy_update",
        context=context,
        resource_type="retention_policy",
        resource_id=tenant_id,
        before=before,
        after=after,
    )
    await session.commit()
    return _policy(row, config)


# --- locks -----------------------------------------------------------------------------------------

_local_locks: dict[str, asyncio.Lock] = {}


@asynccontextmanager
async def try_lock(db: Database, key: str) -> AsyncIterator[bool]:
    """Hold a lock named ``key`` across API replicas (a PostgreSQL session advisory lock on a
    connection of its own; an in-process lock on SQLite); yields False when someone holds it."""
    if db.dialect != "postgresql":
        lock = _local_locks.setdefault(key, asyncio.Lock())
        if lock.locked():
            yield False
            return
        async with lock:
            yield True
        return
    async with db.engine.connect() as conn:
        got = (await conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": key})).scalar_one()
        await conn.commit()
        try:
            yield bool(got)
        finally:
            if got:
                await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
                await conn.commit()


# --- the job ---------------------------------------------------------------------------------------


class _Run:
    """One tenant's pruning: counters, batches and errors as it goes."""

    def __init__(self, db: Database, prefect: PrefectClient, config: ApiSettings, tenant_id: str) -> None:
        self.db = db
        self.prefect = prefect
        self.config = config
        self.tenant_id = tenant_id
        self.batch = config.retention_batch_size
        self.deleted = dict.fromkeys(COUNTERS, 0)
        self.batches = 0
        self.errors: list[str] = []

    async def _pause(self) -> None:
        self.batches += 1
        if self.config.retention_batch_pause_seconds:
            await asyncio.sleep(self.config.retention_batch_pause_seconds)

    async def executions(self, policy: Policy, now: datetime) -> None:
        """Production runs, then the editor's test runs of drafts (tagged apart, counted apart):
        both by age (``execution_days``) and by count per workflow (``executions_per_workflow``)."""
        async with self.db.tenant_scope(tenant_id=self.tenant_id) as session:
            workflow_ids = list(
                (await session.execute(select(Workflow.id).where(Workflow.tenant_id == self.tenant_id))).scalars()
            )
        await self._runs(policy, now, tenant_tag(self.tenant_id), [workflow_tag(w) for w in workflow_ids])
        await self._runs(policy, now, tenant_test_tag(self.tenant_id), [workflow_test_tag(w) for w in workflow_ids])

    async def _runs(self, policy: Policy, now: datetime, tenant: str, workflows: list[str]) -> None:
        cutoff = now - timedelta(days=policy.effective["execution_days"])
        while True:
            found = await prefect_retention.oldest_final_runs(
                self.prefect, tags=[tenant], before=cutoff, limit=self.batch
            )
            if not found:
                break
            gone = await prefect_retention.delete_runs(self.prefect, [r.id for r in found])
            self.deleted["executions"] += gone
            await self._pause()
            if gone == 0:
                break
        keep = policy.effective["executions_per_workflow"]
        for workflow in workflows:
            tags = [tenant, workflow]
            excess = await prefect_retention.count_final_runs(self.prefect, tags=tags) - keep
            while excess > 0:
                found = await prefect_retention.oldest_final_runs(
                    self.prefect, tags=tags, limit=min(self.batch, excess)
                )
                if not found:
                    break
                gone = await prefect_retention.delete_runs(self.prefect, [r.id for r in found])
                self.deleted["executions"] += gone
                excess -= len(found)
                await self._pause()
                if gone == 0:
                    break

    async def step_data(self, policy: Policy, now: datetime) -> None:
        cutoff = now - timedelta(days=policy.effective["step_data_days"])
        async with self.db.tenant_scope(tenant_id=self.tenant_id) as session:
            row = await _row(session, self.tenant_id)
            since = row.step_data_pruned_until if row else None
        if since is not None and since >= cutoff:
            return
        while True:
            found = await prefect_retention.oldest_final_runs(
                self.prefect, tags=[tenant_tag(self.tenant_id)], since=since, before=cutoff, limit=self.batch
            )
            if found:
                self.deleted["step_records"] += await prefect_retention.strip_step_data(
                    self.prefect, [r.id for r in found], at=now
                )
                await self._pause()
            last = found[-1].expected_start_time if found else None
            done = len(found) < self.batch or last is None or last == since
            since = cutoff if done else last
            await self._save_watermark(since)
            if done:
                return

    async def _save_watermark(self, until: datetime | None) -> None:
        async with self.db.tenant_scope(tenant_id=self.tenant_id) as session:
            row = await _row(session, self.tenant_id)
            if row is None:
                row = RetentionPolicy(id=new_id(), tenant_id=self.tenant_id, updated_at=utcnow())
                session.add(row)
            row.step_data_pruned_until = until
            await session.commit()

    async def deliveries(self, policy: Policy, now: datetime) -> None:
        cutoff = now - timedelta(days=policy.effective["delivery_days"])
        keep = policy.effective["deliveries_per_webhook"]
        mine = WebhookDelivery.tenant_id == self.tenant_id
        settled = WebhookDelivery.status != "accepted"  # still waiting for dispatch: kept
        by_age = select(WebhookDelivery.seq).where(mine, settled, WebhookDelivery.received_at < cutoff)
        ranked = (
            select(
                WebhookDelivery.seq,
                WebhookDelivery.status,
                func.row_number()
                .over(
                    partition_by=WebhookDelivery.webhook_id,
                    order_by=(WebhookDelivery.received_at.desc(), WebhookDelivery.seq.desc()),
                )
                .label("rank"),
            )
            .where(mine)
            .subquery()
        )
        by_count = select(ranked.c.seq).where(ranked.c.rank > keep, ranked.c.status != "accepted")
        for query in (by_age, by_count):
            while True:
                async with self.db.tenant_scope(tenant_id=self.tenant_id) as session:
                    seqs = list((await session.execute(query.limit(self.batch))).scalars())
                    if not seqs:
                        break
                    await session.execute(
                        delete(WebhookDelivery)
                        .where(mine, WebhookDelivery.seq.in_(seqs))
                        .execution_options(synchronize_session=False)
                    )
                    await session.commit()
                self.deleted["webhook_deliveries"] += len(seqs)
                await self._pause()

    async def audit_log(self, policy: Policy, now: datetime) -> None:
        cutoff = now - timedelta(days=policy.effective["audit_days"])
        async with self.db.tenant_scope(tenant_id=self.tenant_id) as session:
            through = await audit.prunable_through(session, tenant_id=self.tenant_id, before=cutoff)
            if through is None:
                return
            broken = await audit.verify_chain(session, tenant_id=self.tenant_id)
        if broken is not None:
            # Pruning would anchor on a chain that is already broken: keep the evidence.
            self.errors.append(f"audit_events: the hash chain is broken at seq {broken}; nothing was pruned")
            return
        while True:
            async with self.db.tenant_scope(tenant_id=self.tenant_id) as session:
                first = (
                    await session.execute(
                        select(func.min(AuditEvent.seq)).where(AuditEvent.tenant_id == self.tenant_id)
                    )
                ).scalar_one_or_none()
                if first is None or first > through:
                    return
                upto = min(first + self.batch - 1, through)
                removed = await audit.prune_through(session, tenant_id=self.tenant_id, seq=upto)
                await session.commit()
            self.deleted["audit_events"] += removed
            await self._pause()
            if removed == 0:
                return


async def run_tenant(
    db: Database,
    prefect: PrefectClient,
    config: ApiSettings,
    *,
    tenant_id: str,
    trigger: str,
    context: AuditContext = SYSTEM,
    now: datetime | None = None,
) -> RetentionRun:
    """Apply the tenant's policy now; stores and returns the report (Conflict when a run for the
    tenant is already going on, here or on another replica)."""
    now = now or utcnow()
    async with try_lock(db, f"gorax:retention:{tenant_id}") as got:
        if not got:
            raise Conflict("a retention run for this tenant is already in progress", details={"tenant_id": tenant_id})
        async with db.tenant_scope(tenant_id=tenant_id) as session:
            policy = await get_policy(session, tenant_id=tenant_id, config=config)
        run = _Run(db, prefect, config, tenant_id)
        for name, part in (
            ("executions", run.executions),
            ("step_records", run.step_data),
            ("webhook_deliveries", run.deliveries),
            ("audit_events", run.audit_log),
        ):
            try:
                await part(policy, now)
            except Exception as exc:  # one part failing must not stop the others; reported
                log.warning("retention of %s failed for tenant %s: %s", name, tenant_id, exc)
                run.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        report = RetentionRun(
            id=new_id(),
            tenant_id=tenant_id,
            started_at=now,
            finished_at=utcnow(),
            trigger=trigger,
            status="failed" if run.errors else "completed",
            deleted=run.deleted,
            batches=run.batches,
            error="; ".join(run.errors) or None,
        )
        async with db.tenant_scope(tenant_id=tenant_id) as session:
            session.add(report)
            if trigger != "schedule" or any(run.deleted.values()) or run.errors:
                await audit.record(
                    session,
                    tenant_id=tenant_id,
                    action="retention.pruned",
                    context=context,
                    resource_type="retention_run",
                    resource_id=report.id,
                    outcome="failure" if run.errors else "success",
                    details={
                        "deleted": run.deleted,
                        "batches": run.batches,
                        "policy": policy.effective,
                        "errors": run.errors,
                    },
                )
            await session.commit()
        return report


async def run_all(db: Database, prefect: PrefectClient, config: ApiSettings) -> list[RetentionRun] | None:
    """Apply every tenant's policy, on one replica at a time (None when another one is at it)."""
    async with try_lock(db, _SWEEP_LOCK) as got:
        if not got:
            return None
        async with db.system_scope() as session:
            tenant_ids = list((await session.execute(select(Tenant.id).order_by(Tenant.created_at))).scalars())
        reports = []
        for tenant_id in tenant_ids:
            try:
                reports.append(await run_tenant(db, prefect, config, tenant_id=tenant_id, trigger="schedule"))
            except Conflict:
                continue  # a person's run-now for that tenant is going on
        return reports


async def recent_runs(session: AsyncSession, *, tenant_id: str, limit: int = 10) -> list[RetentionRun]:
    """The tenant's newest retention reports first."""
    return list(
        (
            await session.execute(
                select(RetentionRun)
                .where(RetentionRun.tenant_id == tenant_id)
                .order_by(RetentionRun.started_at.desc())
                .limit(limit)
            )
        ).scalars()
    )


async def audit_anchor(session: AsyncSession, *, tenant_id: str) -> AuditAnchor | None:
    """Where the tenant's audit chain starts after pruning (None: nothing pruned yet)."""
    return await session.get(AuditAnchor, tenant_id)


class RetentionJob:
    """Runs :func:`run_all` every ``GORAX_RETENTION_INTERVAL_SECONDS`` in the API process."""

    def __init__(self, db: Database, prefect: PrefectClient, config: ApiSettings) -> None:
        self.db = db
        self.prefect = prefect
        self.config = config
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.config.retention_interval_seconds > 0:
            self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.retention_interval_seconds)
            try:
                await run_all(self.db, self.prefect, self.config)
            except Exception as exc:  # the next round tries again
                log.warning("the retention job failed: %s", exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
