"""The human-task timer: escalation steps, timeouts and decision hand-overs, on time.

One timer runs in each API process. It sleeps until the earliest ``due_at`` of any task, or
until it is woken because this process created a task or scheduled a retry, and then acts on
every task that is due. Due times live in the database, so a restart loses nothing. Several
replicas may wake for the same task: each action is claimed by the task's version (optimistic
concurrency), so it happens once, and the audit entries it writes commit with it.

Once a minute the timer also cancels the open tasks of runs that ended outside Gorax (cancelled
in the Prefect UI, crashed, deleted): no due time announces those.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from api.db.base import utcnow
from api.db.engine import Database
from api.models.human_tasks import HumanTask
from api.prefect import PrefectClient
from api.prefect import runs as prefect_runs
from api.services import audit
from api.services import human_tasks as tasks
from api.services.audit import AuditContext

log = logging.getLogger("gorax.human_tasks.timer")

SYSTEM = AuditContext.system()


@dataclass
class _Actions:
    """What acting on one task did: audit entries to write, e-mails to send."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    notices: list[tasks.Notice] = field(default_factory=list)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def apply_due(task: HumanTask, now: datetime) -> _Actions:
    """Take every escalation step of an open task that is due at ``now``, then its timeout."""
    actions = _Actions()
    while task.status == "open" and task.escalation_done < len(task.escalation):
        index = task.escalation_done
        step = task.escalation[index]
        after = float(step["after_seconds"])
        if task.created_at + timedelta(seconds=after) > now:
            break
        task.escalation_done = index + 1
        _escalate(task, index, step, f"nobody decided within {_duration(after)}", actions)
    if task.status == "open" and task.expires_at is not None and task.expires_at <= now:
        tasks.record_decision(task, value=None, comment="expired", decided_by=tasks.SYSTEM_TIMEOUT, status="expired")
        timeout = (task.expires_at - task.created_at).total_seconds()
        actions.entries.append(
            {
                "action": "human_task.expire",
                "after": {"status": "expired"},
                "details": {"reason": f"nobody decided within the timeout ({_duration(timeout)})"},
            }
        )
    task.due_at = tasks.next_due(task)
    return actions


def _escalate(task: HumanTask, index: int, step: dict[str, Any], reason: str, actions: _Actions) -> None:
    notified = list(step.get("notify") or [])
    assigned = [who for who in step.get("assign") or [] if who not in task.assignees]
    if assigned:
        task.assignees = [*task.assignees, *assigned]
    seen = [who for who in notified if who not in task.viewers and who not in task.assignees]
    if seen:
        task.viewers = [*task.viewers, *seen]
    told = list(dict.fromkeys([*notified, *assigned]))
    if told:
        notice = tasks.notify(task, who=told, reason="escalation")
        if notice is not None:
            actions.notices.append(notice)
        actions.entries.append(
            {
                "action": "human_task.escalate",
                "after": {"assignees": task.assignees, "viewers": task.viewers},
                "details": {"reason": reason, "step": index, "notified": notified, "assigned": assigned},
            }
        )
    if step.get("decide"):
        tasks.record_decision(
            task,
            value=step["decide"],
            decided_by=tasks.SYSTEM_TIMEOUT,
            comment="decided automatically: nobody decided in time",
        )
        actions.entries.append(
            {
                "action": "human_task.decide",
                "after": {"decision": step["decide"]},
                "details": {"reason": reason, "step": index},
            }
        )


async def act(
    db: Database, prefect: PrefectClient, *, tenant_id: str, task_id: str, now: datetime, link_key: bytes, api_url: str
) -> bool:
    """Do what is due on one task; False when another process (or person) got there first."""
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        task = await tasks.get_task(session, tenant_id=tenant_id, task_id=task_id)
        if task.due_at is None or task.due_at > now:
            return False
        actions = apply_due(task, now) if task.status == "open" else _Actions()
        hand_over = task.status in ("decided", "expired") and task.resumed_at is None
        if hand_over:
            # A lease: if this process stops before handing the decision over, another takes it.
            task.due_at = now + timedelta(seconds=tasks.MAX_RESUME_RETRY_SECONDS)
        elif task.status != "open":
            task.due_at = None
        try:
            await session.flush()  # the claim: the update matches only the version read
        except StaleDataError:
            return False
        for entry in actions.entries:
            await audit.record(
                session,
                tenant_id=tenant_id,
                context=SYSTEM,
                resource_type="human_task",
                resource_id=task.id,
                after=entry["after"],
                details={**entry["details"], "title": task.title, "execution_id": task.flow_run_id},
                action=entry["action"],
            )
        await session.commit()
    await tasks.send_notices(db, actions.notices, link_key=link_key, api_url=api_url)
    if hand_over:
        await tasks.hand_over(db, prefect, tenant_id=tenant_id, task_id=task_id)
    return True


async def earliest_due(db: Database) -> datetime | None:
    """The earliest due time of any task of any tenant."""
    async with db.system_scope() as session:
        return (await session.execute(select(func.min(HumanTask.due_at)))).scalar()


async def fire_due(
    db: Database, prefect: PrefectClient, *, now: datetime, link_key: bytes, api_url: str, batch: int = 100
) -> tuple[int, int]:
    """Act on every task due at ``now``; (acted, failed)."""
    async with db.system_scope() as session:
        due = (
            await session.execute(
                select(HumanTask.tenant_id, HumanTask.id)
                .where(HumanTask.due_at <= now)
                .order_by(HumanTask.due_at)
                .limit(batch)
            )
        ).all()
    acted = failed = 0
    for tenant_id, task_id in due:
        try:
            acted += await act(
                db, prefect, tenant_id=tenant_id, task_id=task_id, now=now, link_key=link_key, api_url=api_url
            )
        except Exception:
            failed += 1
            log.exception("acting on human task %s failed", task_id)
    return acted, failed


async def reconcile(db: Database, prefect: PrefectClient, *, batch: int = 200) -> int:
    """Cancel the open tasks whose runs ended or no longer exist; how many."""
    async with db.system_scope() as session:
        open_tasks = (
            await session.execute(
                select(HumanTask.tenant_id, HumanTask.id, HumanTask.flow_run_id).where(HumanTask.status == "open")
            )
        ).all()
    cancelled = 0
    for start in range(0, len(open_tasks), batch):
        chunk = open_tasks[start : start + batch]
        found = await prefect_runs.read_runs_by_id(prefect, {run_id for _, _, run_id in chunk})
        states = {run_id: run.state.type.value if run.state else None for run_id, run in found.items()}
        for tenant_id, task_id, run_id in chunk:
            state = states.get(run_id, "DELETED")
            if state == "DELETED" or state in tasks.TERMINAL_RUN_STATES:
                cancelled += await _cancel(db, tenant_id=tenant_id, task_id=task_id, run_state=state)
    return cancelled


async def _cancel(db: Database, *, tenant_id: str, task_id: str, run_state: str) -> int:
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        task = await tasks.get_task(session, tenant_id=tenant_id, task_id=task_id)
        if task.status != "open":
            return 0
        task.status, task.resumed_at, task.due_at = "cancelled", utcnow(), None
        try:
            await session.flush()
        except StaleDataError:
            return 0
        reason = "the run no longer exists" if run_state == "DELETED" else f"the run ended ({run_state.lower()})"
        await audit.record(
            session,
            tenant_id=tenant_id,
            action="human_task.cancel",
            context=SYSTEM,
            resource_type="human_task",
            resource_id=task.id,
            after={"status": "cancelled"},
            details={"reason": reason, "title": task.title, "execution_id": task.flow_run_id},
        )
        await session.commit()
    return 1


class HumanTaskTimer:
    """Sleeps until the next due task (or :meth:`wake`), then acts on what is due."""

    def __init__(
        self,
        db: Database,
        prefect: PrefectClient,
        *,
        link_key: bytes,
        api_url: str,
        max_sleep: float = 30.0,
        reconcile_every: float = 60.0,
    ) -> None:
        self.db = db
        self.prefect = prefect
        self.link_key = link_key
        self.api_url = api_url
        # A task created by another replica is found at the latest after this long (its own
        # replica's timer, woken when it created the task, acts on time).
        self.max_sleep = max_sleep
        self.reconcile_every = reconcile_every
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A task was created or got a new due time: look again now."""
        self._wakeup.set()

    async def start(self) -> None:
        """Start the timer loop."""
        self._task = asyncio.create_task(self._run(), name="gorax-human-task-timer")

    async def stop(self) -> None:
        """Stop the loop (due times stay in the database for the next start)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_reconcile = loop.time()
        while True:
            self._wakeup.clear()
            try:
                delay = await self._turn(next_reconcile - loop.time())
                if loop.time() >= next_reconcile:
                    next_reconcile = loop.time() + self.reconcile_every
                    await reconcile(self.db, self.prefect)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or Prefect away: look again shortly
                log.warning("the human-task timer failed (again in 1s): %s", exc)
                delay = 1.0
            if delay > 0:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
                except TimeoutError:
                    pass

    async def _turn(self, until_reconcile: float) -> float:
        """Act on what is due now; how long to sleep after."""
        now = utcnow()
        due = await earliest_due(self.db)
        if due is not None and due <= now + timedelta(milliseconds=1):
            _, failed = await fire_due(self.db, self.prefect, now=now, link_key=self.link_key, api_url=self.api_url)
            return 1.0 if failed else 0.0  # a task that keeps failing must not spin the loop
        delay = self.max_sleep if due is None else (due - now).total_seconds()
        return max(0.0, min(delay, self.max_sleep, until_reconcile))
