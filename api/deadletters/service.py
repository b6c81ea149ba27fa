"""Dead letters: triggers that could not become a run, kept with the reason until an operator
replays or discards them.

What "cannot become a run after its retries" means here:

- **webhook**: a delivery dispatched (its event posted to Prefect) longer ago than
  ``dead_letter_after_seconds`` still has no run. Its dispatcher retried the post until Prefect
  took it, the link loop looked for its run for ``webhook_repair_after_seconds``, and ``gorax
  webhooks repair`` (which moves ``dispatched_at`` forward when it reposts) had its chance. The
  sweep looks for its run once more, under its lock, and links it when there is one; otherwise
  the reason says why: the workflow is paused (a replay waits for its resume), archived or gone, its
  Prefect deployment no longer exists, or Prefect took the event and started nothing.
- **schedule**: a run a schedule started (Prefect's scheduler, or a schedule's "run now") that
  has been Late (no worker started it) or Crashed (the worker's rerun rule gave up) for longer
  than that bound. A Late one is cancelled in Prefect as it becomes a dead letter, so that a
  worker cannot still start it next to its replay.

Nothing is dropped silently: a webhook delivery that becomes a dead letter gets the status
``dead_letter`` (neither the dispatcher nor the repair takes it again), so every accepted
delivery either has a run or a dead letter. The sweep runs in every API replica every
``dead_letter_sweep_seconds``; on PostgreSQL one sweep at a time holds an advisory lock, and a
dead letter's ``reference`` (``delivery:<id>``, ``flow-run:<id>``) is unique.

An operator replays a dead letter through the normal path (a webhook delivery is queued again
as a new delivery, whose run the dead letter then names; a scheduled run is started again from
the workflow's deployment) or discards it with a reason. Each decision is audited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import utcnow
from api.db.engine import Database
from api.deadletters.models import DeadLetter
from api.models.workflows import Workflow
from api.prefect import PrefectClient
from api.prefect import dead_letters as prefect_dead_letters
from api.services import audit
from api.services.audit import AuditContext
from api.services.executions import start_run
from api.webhooks import failures
from api.webhooks import service as webhook_service
from api.webhooks.dispatcher import find_runs, link_runs
from api.webhooks.models import WebhookDelivery

log = logging.getLogger("gorax.deadletters")

#: The advisory lock one sweep at a time holds (PostgreSQL).
LOCK_KEY = "gorax:dead-letter-sweep"
#: The status a delivery gets when it becomes a dead letter.
DELIVERY_STATUS = "dead_letter"
#: Most dead letters one bulk action or one sweep takes.
BULK_LIMIT = 500


@dataclass
class SweepReport:
    """What one sweep found."""

    busy: bool = False
    linked: int = 0  # deliveries whose run turned up after all
    recorded: dict[str, str] = field(default_factory=dict)  # dead letter id -> reason

    def as_dict(self) -> dict[str, Any]:
        return {"busy": self.busy, "linked": self.linked, "recorded": self.recorded}


@asynccontextmanager
async def _exclusive(db: Database) -> AsyncIterator[bool]:
    if db.dialect != "postgresql":
        yield True  # SQLite: one API process; the unique reference guards a CLI beside it
        return
    async with db.system_scope() as session:
        held = (
            await session.execute(text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": LOCK_KEY})
        ).scalar_one()
        try:
            yield bool(held)
        finally:
            await session.rollback()


async def sweep(
    db: Database,
    prefect: PrefectClient,
    *,
    after_seconds: float,
    tenant_id: str | None = None,
    limit: int = BULK_LIMIT,
) -> SweepReport:
    """Record as dead letters the triggers that did not become a run within ``after_seconds``
    (only ``tenant_id``'s when given); see the module's docstring."""
    report = SweepReport()
    async with _exclusive(db) as held:
        if not held:
            report.busy = True
            return report
        cutoff = utcnow() - timedelta(seconds=after_seconds)
        await _sweep_deliveries(db, prefect, report, cutoff=cutoff, tenant_id=tenant_id, limit=limit)
        await _sweep_schedules(db, prefect, report, cutoff=cutoff, tenant_id=tenant_id, limit=limit)
    if report.recorded:
        log.warning("%d triggers became dead letters", len(report.recorded))
    return report


async def _workflows(db: Database, ids: set[str]) -> dict[str, Any]:
    async with db.system_scope() as session:
        query = select(Workflow.id, Workflow.status, Workflow.deployment_id, Workflow.tenant_id).where(
            Workflow.id.in_(ids)
        )
        return {w.id: w for w in (await session.execute(query)).all()}


async def _why_no_run(prefect: PrefectClient, workflow: Any, gone: dict[str, bool]) -> str | None:
    """Why a trigger of ``workflow`` cannot run now (None: nothing in its way)."""
    if workflow is None:
        return "its workflow no longer exists"
    if workflow.status == "paused":
        return "its workflow is paused: replay it once the workflow is resumed"
    if workflow.status != "active" or not workflow.deployment_id:
        return f"its workflow is {workflow.status}, with no deployment to run"
    deployment = str(workflow.deployment_id)
    if deployment not in gone:
        gone[deployment] = not await prefect_dead_letters.deployment_exists(prefect, deployment)
    if gone[deployment]:
        return f"its Prefect deployment {deployment} no longer exists"
    return None


async def _sweep_deliveries(
    db: Database, prefect: PrefectClient, report: SweepReport, *, cutoff: datetime, tenant_id: str | None, limit: int
) -> None:
    d = WebhookDelivery
    query = (
        select(d.seq, d.id, d.tenant_id, d.workflow_id, d.node_id, d.webhook_id, d.received_at, d.dispatched_at)
        .where(d.status == "dispatched", d.run_id.is_(None), d.dispatched_at < cutoff)
        .order_by(d.seq)
        .limit(limit)
    )
    if tenant_id is not None:
        query = query.where(d.tenant_id == tenant_id)
    async with db.system_scope() as session:
        rows = list((await session.execute(query)).all())
    if not rows:
        return
    found = await find_runs(prefect, rows)  # a run that came late after all is linked, not dead
    if found:
        await link_runs(db, found)
        report.linked += len(found)
    rows = [row for row in rows if row.seq not in found]
    workflows = await _workflows(db, {row.workflow_id for row in rows})
    gone: dict[str, bool] = {}
    reasons = {}
    for row in rows:
        why = await _why_no_run(prefect, workflows.get(row.workflow_id), gone)
        reasons[row.seq] = why or "Prefect took its event but started no run (even after any repair)"
    now = utcnow()
    by_tenant: dict[str, list[str]] = {}
    async with db.system_scope() as session:
        # Claimed with a conditional update: a delivery linked or claimed meanwhile is left alone.
        claimed = set(
            (
                await session.execute(
                    update(d)
                    .where(d.seq.in_([row.seq for row in rows]), d.status == "dispatched", d.run_id.is_(None))
                    .values(status=DELIVERY_STATUS)
                    .returning(d.seq)
                )
            ).scalars()
        )
        payloads: dict[int, Any] = {}
        attempts: dict[int, int] = {}
        if claimed:
            query = select(d.seq, d.payload, d.attempts).where(d.seq.in_(claimed))
            for seq, payload, tries in (await session.execute(query)).all():
                payloads[seq], attempts[seq] = payload, tries
        for row in rows:
            if row.seq not in claimed:
                continue
            letter = DeadLetter(
                tenant_id=row.tenant_id,
                source="webhook",
                reference=f"delivery:{row.id}",
                workflow_id=row.workflow_id,
                node_id=row.node_id,
                webhook_id=row.webhook_id,
                delivery_id=row.id,
                payload=payloads.get(row.seq),
                reason=reasons[row.seq],
                attempts=int(attempts.get(row.seq) or 1),
                first_seen_at=row.received_at,
                last_seen_at=now,
                status="open",
            )
            session.add(letter)
            await session.flush()
            report.recorded[letter.id] = letter.reason
            by_tenant.setdefault(row.tenant_id, []).append(letter.id)
        await _audit_recorded(session, by_tenant)
        await session.commit()
    failed = [
        failures.event_of(
            delivery_id=row.id,
            tenant_id=row.tenant_id,
            workflow_id=row.workflow_id,
            webhook_id=row.webhook_id,
            node_id=row.node_id,
            failure=failures.DEAD_LETTER,
            reason=reasons[row.seq],
            occurred=now,
        )
        for row in rows
        if row.seq in claimed
    ]
    try:  # counted by webhook_failures alert rules; the dead letters are recorded either way
        await failures.emit(prefect, failed)
    except Exception as exc:
        log.warning("could not post %d failed-delivery event(s) to Prefect: %s", len(failed), exc)


async def _sweep_schedules(
    db: Database, prefect: PrefectClient, report: SweepReport, *, cutoff: datetime, tenant_id: str | None, limit: int
) -> None:
    stuck = await prefect_dead_letters.stuck_schedule_runs(prefect, tenant_id=tenant_id, before=cutoff, limit=limit)
    if not stuck:
        return
    async with db.system_scope() as session:
        known = set(
            (
                await session.execute(
                    select(DeadLetter.reference).where(
                        DeadLetter.reference.in_([f"flow-run:{run.id}" for run in stuck])
                    )
                )
            ).scalars()
        )
    stuck = [run for run in stuck if f"flow-run:{run.id}" not in known]
    tags = {run.id: _tag_values(run.tags) for run in stuck}
    workflows = await _workflows(db, {tags[run.id].get("workflow", "") for run in stuck})
    gone: dict[str, bool] = {}
    now = utcnow()
    by_tenant: dict[str, list[str]] = {}
    async with db.system_scope() as session:
        for run in stuck:
            tenant, workflow_id = tags[run.id].get("tenant"), tags[run.id].get("workflow")
            if not tenant or not workflow_id or (tenant_id is not None and tenant != tenant_id):
                continue
            workflow = workflows.get(workflow_id)
            if workflow is not None and workflow.tenant_id != tenant:
                continue  # a run whose tags do not match its workflow's tenant is not a tenant's
            state = run.state.name if run.state else "?"
            since = prefect_dead_letters.state_time(run)
            if state == "Late":
                message = "moved to Gorax dead letters: no worker started it in time"
                result = await prefect_dead_letters.set_aside(prefect, str(run.id), message)
                if str(getattr(result.status, "value", result.status)).upper() != "ACCEPT":
                    continue  # it left Late meanwhile: not a dead letter
                what = f"the scheduled run was Late since {since:%Y-%m-%d %H:%M:%S} UTC: no worker started it"
            else:
                detail = (run.state.message or "").strip() if run.state else ""
                what = "the scheduled run crashed and was not rerun" + (f" ({detail[:300]})" if detail else "")
            blocker = await _why_no_run(prefect, workflow, gone)
            letter = DeadLetter(
                tenant_id=tenant,
                source="schedule",
                reference=f"flow-run:{run.id}",
                workflow_id=workflow_id,
                node_id=(run.parameters or {}).get("trigger_node"),
                flow_run_id=str(run.id),
                payload=_schedule_payload(run),
                reason=what + (f"; {blocker}" if blocker else ""),
                attempts=max(int(run.run_count or 0), 1),
                first_seen_at=run.expected_start_time or since or now,
                last_seen_at=now,
                status="open",
            )
            session.add(letter)
            await session.flush()
            report.recorded[letter.id] = letter.reason
            by_tenant.setdefault(tenant, []).append(letter.id)
        await _audit_recorded(session, by_tenant)
        await session.commit()


def _tag_values(tags: list[str] | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for tag in tags or []:
        key, sep, value = tag.partition(":")
        if sep and key in ("tenant", "workflow"):
            values[key] = value
    return values


def _schedule_payload(run: Any) -> dict[str, Any]:
    """What a scheduled run was started with, without its graph and tenant variables (``env``:
    the replay reads them afresh)."""
    parameters = run.parameters or {}
    trigger = parameters.get("trigger")
    payload: dict[str, Any] = {"trigger": trigger if trigger is not None else {}}
    if parameters.get("trigger_node"):
        payload["trigger_node"] = parameters["trigger_node"]
    payload["scheduled_at"] = run.expected_start_time.isoformat() if run.expected_start_time else None
    return payload


async def _audit_recorded(session: AsyncSession, by_tenant: dict[str, list[str]]) -> None:
    for tenant, ids in by_tenant.items():
        await audit.record(
            session,
            tenant_id=tenant,
            action="dead_letter.record",
            context=AuditContext.system("dead-letter-sweep"),
            resource_type="dead_letter",
            details={"count": len(ids), "dead_letters": ids[:100]},
        )


# Operators' decisions ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of one dead letter in a decision."""

    id: str
    ok: bool
    status: str | None = None
    error: str | None = None
    replay_delivery_id: str | None = None
    replay_run_id: str | None = None


async def resolve_replays(session: AsyncSession, letters: list[DeadLetter]) -> None:
    """Fill in the run of replayed webhook dead letters once their new delivery has one."""
    waiting = {
        letter.replay_delivery_id: letter
        for letter in letters
        if letter.status == "replayed" and letter.replay_delivery_id and not letter.replay_run_id
    }
    if not waiting:
        return
    d = WebhookDelivery
    rows = (await session.execute(select(d.id, d.run_id).where(d.id.in_(list(waiting)), d.run_id.is_not(None)))).all()
    for delivery_id, run_id in rows:
        waiting[delivery_id].replay_run_id = run_id
    if rows:
        await session.commit()


async def _claim(session: AsyncSession, tenant_id: str, letter_id: str, to: str, context: AuditContext) -> bool:
    """Move an open dead letter to ``to`` (only one decision wins)."""
    result = await session.execute(
        update(DeadLetter)
        .where(DeadLetter.tenant_id == tenant_id, DeadLetter.id == letter_id, DeadLetter.status == "open")
        .values(status=to, decided_at=utcnow(), decided_by=f"{context.actor_type}:{context.actor_id or ''}"[:80])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def replay_one(
    db: Database, prefect: PrefectClient, *, tenant_id: str, letter: DeadLetter, context: AuditContext
) -> Outcome:
    """Replay one open dead letter through the normal path; its status becomes ``replayed``."""
    if letter.status != "open":
        return Outcome(letter.id, False, letter.status, f"dead letter {letter.id} is {letter.status}, not open")
    workflow = (await _workflows(db, {letter.workflow_id})).get(letter.workflow_id)
    if workflow is None or workflow.tenant_id != tenant_id:
        return Outcome(letter.id, False, "open", "its workflow no longer exists: discard it instead")
    blocker = await _why_no_run(prefect, workflow, {})
    if blocker:
        return Outcome(letter.id, False, "open", f"cannot replay yet: {blocker}")
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        if not await _claim(session, tenant_id, letter.id, "replayed", context):
            await session.rollback()
            return Outcome(letter.id, False, None, f"dead letter {letter.id} was decided meanwhile")
        await session.commit()
    details: dict[str, Any] = {"source": letter.source, "reference": letter.reference}
    delivery_id = run_id = None
    try:
        if letter.source == "webhook":
            fresh = await webhook_service.replay(
                db, tenant_id=tenant_id, webhook_id=letter.webhook_id or "", delivery_id_=letter.delivery_id or ""
            )
            delivery_id = details["replay_delivery_id"] = fresh.id
        else:
            payload = letter.payload or {}
            run = await start_run(
                prefect,
                tenant_id=tenant_id,
                workflow_id=letter.workflow_id,
                deployment_id=str(workflow.deployment_id),
                trigger=payload.get("trigger") or {},
                trigger_type="schedule",
                parameters={"trigger_node": payload["trigger_node"]} if payload.get("trigger_node") else None,
                idempotency_key=f"gorax-dead-letter:{letter.id}",
            )
            run_id = details["replay_run_id"] = str(run.id)
    except Exception as exc:
        # Put it back: the replay did not happen, and the dead letter must not look handled.
        async with db.tenant_scope(tenant_id=tenant_id) as session:
            await session.execute(
                update(DeadLetter)
                .where(DeadLetter.tenant_id == tenant_id, DeadLetter.id == letter.id)
                .values(status="open", decided_at=None, decided_by=None)
            )
            await session.commit()
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return Outcome(letter.id, False, "open", f"replay failed: {message[:300]}")
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        await session.execute(
            update(DeadLetter)
            .where(DeadLetter.tenant_id == tenant_id, DeadLetter.id == letter.id)
            .values(replay_delivery_id=delivery_id, replay_run_id=run_id)
        )
        await audit.record(
            session,
            tenant_id=tenant_id,
            action="dead_letter.replay",
            context=context,
            resource_type="dead_letter",
            resource_id=letter.id,
            details=details,
        )
        await session.commit()
    return Outcome(letter.id, True, "replayed", None, delivery_id, run_id)


async def discard_one(db: Database, *, tenant_id: str, letter: DeadLetter, note: str, context: AuditContext) -> Outcome:
    """Discard one open dead letter with the operator's reason."""
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        if not await _claim(session, tenant_id, letter.id, "discarded", context):
            await session.rollback()
            return Outcome(letter.id, False, letter.status, f"dead letter {letter.id} is {letter.status}, not open")
        await session.execute(
            update(DeadLetter).where(DeadLetter.tenant_id == tenant_id, DeadLetter.id == letter.id).values(note=note)
        )
        await audit.record(
            session,
            tenant_id=tenant_id,
            action="dead_letter.discard",
            context=context,
            resource_type="dead_letter",
            resource_id=letter.id,
            details={"source": letter.source, "reference": letter.reference, "reason": note},
        )
        await session.commit()
    return Outcome(letter.id, True, "discarded")


async def counts(session: AsyncSession, tenant_id: str) -> dict[str, int]:
    """The tenant's dead letters by status."""
    rows = (
        await session.execute(
            select(DeadLetter.status, func.count()).where(DeadLetter.tenant_id == tenant_id).group_by(DeadLetter.status)
        )
    ).all()
    return {status: int(n) for status, n in rows}


class Sweeper:
    """Runs :func:`sweep` every ``every`` seconds in the background (first after one period)."""

    def __init__(self, db: Database, prefect: PrefectClient, *, every: float, after_seconds: float) -> None:
        self.db, self.prefect, self.every, self.after_seconds = db, prefect, every, after_seconds
        self._task: Any = None

    async def start(self) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(self.every)
                try:
                    await sweep(self.db, self.prefect, after_seconds=self.after_seconds)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("dead-letter sweep failed (%s: %s)", type(exc).__name__, str(exc)[:300])

        self._task = asyncio.create_task(loop(), name="gorax-dead-letter-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
