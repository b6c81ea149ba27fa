"""Human tasks: recording them for suspended runs, the inbox, decisions, notifications.

A run's ``human.approval`` node records its task through the internal endpoint, then the run
suspends in Prefect. A decision is stored first and then handed to Prefect by resuming the
flow run with the decision as its typed input. What happens by itself (escalation steps, the
timeout, handing a decision to a run that was not paused yet) is done when the task's
``due_at`` comes, by :mod:`api.services.human_task_timer`.

Who is who: *assignees* may decide (and see) a task; *viewers*, the people an escalation step
notified, may see it; admins see every task of their tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from jsonschema import Draft202012Validator
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from api.auth.permissions import Role
from api.auth.principal import Principal
from api.db.base import affected_rows, utcnow
from api.db.engine import Database
from api.errors import Conflict, Forbidden, NotFound, ValidationFailed
from api.models.human_tasks import HumanTask
from api.prefect import PrefectClient
from api.prefect import runs as prefect_runs
from api.services import audit, credential_audit, notifications
from api.services.audit import AuditContext
from api.services.identity import list_members

log = logging.getLogger("gorax.human_tasks")

SYSTEM_TIMEOUT = "system:timeout"
#: Run states after which nobody can still decide for the run.
TERMINAL_RUN_STATES = frozenset({"CANCELLED", "CANCELLING", "FAILED", "CRASHED", "COMPLETED"})
#: How often a decision is offered again to a run that was not paused yet, at most.
MAX_RESUME_RETRY_SECONDS = 60.0


# -- recording ------------------------------------------------------------------------------
async def create_task(session: AsyncSession, *, tenant_id: str, request: dict[str, Any]) -> tuple[HumanTask, bool]:
    """The task of (flow run, node key), created when new; returns (task, created)."""
    existing = (
        await session.execute(
            select(HumanTask).where(
                HumanTask.tenant_id == tenant_id,
                HumanTask.flow_run_id == request["flow_run_id"],
                HumanTask.node_key == request["node_key"],
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing, False
    now = utcnow()
    timeout = request.get("timeout_seconds")
    task = HumanTask(
        tenant_id=tenant_id,
        flow_run_id=request["flow_run_id"],
        node_id=request["node_id"],
        node_key=request["node_key"],
        node_name=request.get("node_name") or request["node_id"],
        workflow_id=request.get("workflow_id"),
        workflow_name=request.get("workflow_name"),
        title=request["title"],
        description=request.get("description"),
        assignees=list(request["assignees"]),
        options=list(request["options"]),
        snapshot=request.get("snapshot") or {},
        channels=list(request.get("channels") or ["inbox"]),
        email_credential=request.get("email_credential"),
        escalation=list(request.get("escalation") or []),
        escalation_done=0,
        viewers=[],
        status="open",
        created_at=now,
        expires_at=now + timedelta(seconds=float(timeout)) if timeout else None,
        notifications=[],
    )
    task.due_at = next_due(task)
    session.add(task)
    await session.flush()
    return task, True


def next_due(task: HumanTask) -> datetime | None:
    """When an open task's next escalation step or its expiry is due (None: never)."""
    if task.status != "open":
        return None
    times = [task.expires_at] if task.expires_at else []
    if task.escalation_done < len(task.escalation):
        step = task.escalation[task.escalation_done]
        times.append(task.created_at + timedelta(seconds=float(step["after_seconds"])))
    return min(times) if times else None


# -- reading ----------------------------------------------------------------------------------
def _names(entries: list[str], principal: Principal) -> bool:
    """Whether ``principal`` is one of ``entries`` (e-mail, user id or ``role:<role>``)."""
    for entry in entries:
        if entry.startswith("role:"):
            if principal.role is not None and principal.role.value == entry[5:]:
                return True
        elif principal.kind == "user" and entry.lower() in {(principal.email or "").lower(), principal.id.lower()}:
            return True
    return False


def is_assignee(task: HumanTask, principal: Principal) -> bool:
    """Whether ``principal`` may decide the task (its assignees, escalation's included)."""
    return _names(task.assignees, principal)


def can_view(task: HumanTask, principal: Principal) -> bool:
    """Admins, assignees and the people an escalation step notified may open the task."""
    return principal.role is Role.ADMIN or is_assignee(task, principal) or _names(task.viewers, principal)


async def list_tasks(
    session: AsyncSession,
    *,
    tenant_id: str,
    principal: Principal,
    status: str | None,
    workflow_id: str | None,
    limit: int,
) -> list[HumanTask]:
    """The tasks the principal may see (every task of the tenant for admins), newest first."""
    query = select(HumanTask).where(HumanTask.tenant_id == tenant_id)
    if status:
        query = query.where(HumanTask.status == status)
    if workflow_id:
        query = query.where(HumanTask.workflow_id == workflow_id)
    rows = (await session.execute(query.order_by(HumanTask.created_at.desc()))).scalars().all()
    visible = [task for task in rows if can_view(task, principal)]
    return visible[:limit]


async def get_task(session: AsyncSession, *, tenant_id: str, task_id: str) -> HumanTask:
    task = (
        await session.execute(select(HumanTask).where(HumanTask.tenant_id == tenant_id, HumanTask.id == task_id))
    ).scalar_one_or_none()
    if task is None:
        raise NotFound(f"human task {task_id!r} not found", details={"human_task_id": task_id})
    return task


def public(task: HumanTask) -> dict[str, Any]:
    """The task as the API shows it."""
    return {
        "id": task.id,
        "status": task.status,
        "title": task.title,
        "description": task.description,
        "workflow_id": task.workflow_id,
        "workflow_name": task.workflow_name,
        "execution_id": task.flow_run_id,
        "node_id": task.node_id,
        "node_name": task.node_name,
        "assignees": task.assignees,
        "viewers": task.viewers,
        "options": task.options,
        "data": task.snapshot,
        "decision": task.decision,
        "comment": task.comment,
        "decided_by": task.decided_by,
        "decided_at": task.decided_at,
        "arguments": task.arguments,
        "created_at": task.created_at,
        "expires_at": task.expires_at,
        "escalation": task.escalation,
        "escalation_done": task.escalation_done,
        "notifications": task.notifications,
    }


# -- deciding ---------------------------------------------------------------------------------
async def decide(
    session: AsyncSession,
    *,
    db: Database,
    context: AuditContext,
    tenant_id: str,
    task_id: str,
    principal: Principal,
    value: str,
    comment: str | None,
    arguments: dict[str, Any] | None = None,
) -> HumanTask:
    """Record and audit a person's decision (flushed; the caller commits).

    Refused with 403 for someone who is not an assignee and 409 for a task that is no longer
    open (also when another decision won a race); a refusal is audited in a transaction of its
    own, so the entry stays although the request fails.
    """
    task = await get_task(session, tenant_id=tenant_id, task_id=task_id)
    if not is_assignee(task, principal):
        await _refuse(db, context, task, value, outcome="denied", reason="not an assignee of this task")
        raise Forbidden(
            "only an assignee of this task may decide it",
            details={"human_task_id": task_id, "assignees": task.assignees},
        )
    if task.status != "open":
        await _refuse(db, context, task, value, outcome="conflict", reason=f"the task is already {task.status}")
        raise _ended(task)
    values = [option["value"] for option in task.options]
    if value not in values:
        raise ValidationFailed(
            f"value {value!r} is not an option of this task ({', '.join(values)})",
            details={
                "errors": [
                    {
                        "field": "value",
                        "path": "value",
                        "code": "not_an_option",
                        "message": f"choose one of {', '.join(values)}",
                    }
                ]
            },
        )
    if arguments is not None:
        _check_arguments(task, value, arguments)
        task.arguments = arguments
    record_decision(task, value=value, comment=comment, decided_by=principal.email or principal.actor)
    try:
        await session.flush()
    except StaleDataError:
        # Decided, escalated or cancelled by someone else since it was read.
        await session.rollback()
        task = await get_task(session, tenant_id=tenant_id, task_id=task_id)
        await _refuse(db, context, task, value, outcome="conflict", reason=f"the task was {task.status} meanwhile")
        raise _ended(task) from None
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="human_task.decide",
        context=context,
        resource_type="human_task",
        resource_id=task.id,
        after={"decision": task.decision, "comment": task.comment}
        | ({"arguments": task.arguments} if task.arguments is not None else {}),
        details={"title": task.title, "data": task.snapshot, "execution_id": task.flow_run_id},
    )
    return task


#: The option of an agent's gated tool call that runs it (the one edited arguments go with).
TOOL_APPROVE = "approved"


def _check_arguments(task: HumanTask, value: str, arguments: dict[str, Any]) -> None:
    """Edited arguments fit only an agent's gated tool call being approved, and its schema."""
    call = (task.snapshot or {}).get("tool_call")
    if not isinstance(call, dict):
        raise ValidationFailed(
            "this task is not a tool call: it takes no arguments",
            details={"errors": [{"field": "arguments", "path": "arguments", "code": "no_arguments"}]},
        )
    if value != TOOL_APPROVE:
        raise ValidationFailed(
            f"arguments go with the {TOOL_APPROVE!r} option only",
            details={"errors": [{"field": "arguments", "path": "arguments", "code": "not_approved"}]},
        )
    validator = Draft202012Validator(call.get("schema") or {"type": "object"})
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        raise ValidationFailed(
            f"the arguments do not fit the schema of tool {call.get('tool')!r}",
            details={
                "errors": [
                    {
                        "field": "arguments",
                        "path": "/".join(["arguments", *(str(p) for p in e.path)]),
                        "code": "schema",
                        "message": e.message,
                    }
                    for e in errors
                ]
            },
        )


def _ended(task: HumanTask) -> Conflict:
    return Conflict(
        f"human task {task.id} is already {task.status}",
        details={
            "human_task_id": task.id,
            "status": task.status,
            "decision": task.decision,
            "decided_by": task.decided_by,
        },
    )


async def _refuse(
    db: Database, context: AuditContext, task: HumanTask, value: str, *, outcome: str, reason: str
) -> None:
    await audit.record_now(
        db,
        tenant_id=task.tenant_id,
        action="human_task.decide",
        context=context,
        resource_type="human_task",
        resource_id=task.id,
        outcome=outcome,
        details={"reason": reason, "value": value, "status": task.status, "execution_id": task.flow_run_id},
    )


def record_decision(
    task: HumanTask, *, value: str | None, comment: str | None, decided_by: str, status: str = "decided"
) -> None:
    """Close the task with ``value`` (None when it expired); what is left is handing it over."""
    task.status = status
    task.decision = value
    task.comment = comment
    task.decided_by = decided_by
    task.decided_at = utcnow()
    # Handed over right after the commit; should that not happen (the process stopped), the
    # timer does it when this comes.
    task.due_at = task.decided_at + timedelta(seconds=MAX_RESUME_RETRY_SECONDS)


async def resume_run(prefect: PrefectClient, task: HumanTask) -> bool:
    """Hand the decision to Prefect; True when the run was resumed (or no longer waits)."""
    run_input: dict[str, Any] = {
        "value": task.decision,
        "comment": task.comment,
        "decided_by": task.decided_by,
        "decided_at": task.decided_at.isoformat() if task.decided_at else None,
        "expired": task.status == "expired",
    }
    if task.arguments is not None:
        # Only an agent's gated tool call takes arguments: an approval's input has no such field.
        run_input["arguments"] = task.arguments
    flow_run = await prefect_runs.read_run(prefect, UUID(task.flow_run_id))
    if flow_run is None:
        return True
    state = flow_run.state
    if state is None:
        return False
    pause_key = state.state_details.pause_key if state.is_paused() else None
    # A run with several approvals open (a loop, parallel branches) waits on one of them at a
    # time: resuming it with another task's decision would answer the wrong question.
    if state.is_paused() and pause_key in (None, task.node_key):
        try:
            await prefect_runs.resume_run(prefect, flow_run.id, run_input)
        except Exception as exc:  # the timer tries again
            log.warning("resuming run %s for task %s failed: %s", flow_run.id, task.id, exc)
            return False
        return True
    # Still running towards its suspend (or waiting on another task): the timer offers the
    # decision again. Finished: nothing to do.
    return state.type.value in TERMINAL_RUN_STATES


async def hand_over(db: Database, prefect: PrefectClient, *, tenant_id: str, task_id: str) -> bool:
    """Resume the run of a decided or expired task, or schedule another try; True when resumed."""
    for _ in range(3):
        async with db.tenant_scope(tenant_id=tenant_id) as session:
            task = await get_task(session, tenant_id=tenant_id, task_id=task_id)
            if task.status not in ("decided", "expired") or task.resumed_at is not None:
                return task.resumed_at is not None
            resumed = await resume_run(prefect, task)
            now = utcnow()
            if resumed:
                task.resumed_at, task.due_at = now, None
            else:
                # Soon after the decision (the run suspends a moment after recording the task),
                # then less and less often.
                waited = (now - (task.decided_at or now)).total_seconds()
                task.due_at = now + timedelta(seconds=min(MAX_RESUME_RETRY_SECONDS, max(1.0, waited / 2)))
            try:
                await session.commit()
            except StaleDataError:
                continue
            return resumed
    return False


async def cancel_for_run(session: AsyncSession, *, tenant_id: str, flow_run_id: str) -> int:
    """Cancel the open tasks of a cancelled run; how many (flushed; the caller commits)."""
    now = utcnow()
    result = await session.execute(
        update(HumanTask)
        .where(HumanTask.tenant_id == tenant_id, HumanTask.flow_run_id == flow_run_id, HumanTask.status == "open")
        .values(status="cancelled", resumed_at=now, due_at=None, version=HumanTask.version + 1)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result)


# -- links --------------------------------------------------------------------------------------
def sign_link(key: bytes, task_id: str, *, valid_seconds: int = 7 * 86400) -> tuple[int, str]:
    """An expiry and signature for a decision-page link (deciding still needs sign-in)."""
    expires = int(time.time()) + valid_seconds
    return expires, _link_mac(key, task_id, expires)


def verify_link(key: bytes, task_id: str, expires: int, signature: str) -> bool:
    """Whether the link is genuine and not expired (constant-time comparison)."""
    if expires < time.time():
        return False
    return hmac.compare_digest(_link_mac(key, task_id, expires), signature)


def _link_mac(key: bytes, task_id: str, expires: int) -> str:
    return hmac.new(key, f"human-task:{task_id}:{expires}".encode(), hashlib.sha256).hexdigest()


# -- notifications ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Notice:
    """A notification whose e-mail is sent once the change that made it is committed."""

    tenant_id: str
    task_id: str
    index: int  # of its entry in the task's notifications
    who: tuple[str, ...]
    reason: str


def notify(task: HumanTask, *, who: list[str], reason: str) -> Notice | None:
    """Note a notification of ``who`` (the inbox shows the task); the e-mail to send, if any."""
    entry: dict[str, Any] = {"at": utcnow().isoformat(), "reason": reason, "to": list(who), "channels": ["inbox"]}
    task.notifications = [*task.notifications, entry]
    if "email" in task.channels and task.email_credential:
        return Notice(task.tenant_id, task.id, len(task.notifications) - 1, tuple(who), reason)
    return None


async def send_notices(db: Database, notices: list[Notice], *, link_key: bytes, api_url: str) -> None:
    """E-mail each notice and note the outcome on its entry (a failure is noted, not raised)."""
    for notice in notices:
        async with db.tenant_scope(tenant_id=notice.tenant_id) as session:
            task = await get_task(session, tenant_id=notice.tenant_id, task_id=notice.task_id)
            addresses = await _recipients(session, tenant_id=task.tenant_id, who=list(notice.who))
        outcome: dict[str, Any]
        used: str | None = None
        try:
            server = await notifications.load_mail_server(
                tenant_id=task.tenant_id, credential=task.email_credential or ""
            )
            used = str(getattr(server, "block_type_slug", "smtp-server"))
            await notifications.send_email(
                server,
                to=addresses,
                subject=_subject(task, notice.reason),
                text=_mail_text(task, link_key=link_key, api_url=api_url),
            )
            outcome = {"channels": ["inbox", "email"], "emailed": addresses}
        except Exception as exc:
            outcome = {"email_error": str(exc)[:300]}
            log.warning("e-mail for human task %s failed: %s", task.id, exc)
        await _note_outcome(db, notice, outcome, credential_type=used)


def _subject(task: HumanTask, reason: str) -> str:
    return f"[Gorax] {'Reminder: ' if reason == 'escalation' else ''}{task.title}"


def _mail_text(task: HumanTask, *, link_key: bytes, api_url: str) -> str:
    expires, signature = sign_link(link_key, task.id)
    link = f"{api_url}/api/v1/human-tasks/{task.id}/open?expires={expires}&signature={signature}"
    return (
        f"{task.title}\n\n{task.description or ''}\n\nWorkflow: {task.workflow_name}\n"
        f"Options: {', '.join(o['label'] for o in task.options)}\n\n"
        f"Decide here (sign-in required): {link}\n"
    )


async def _note_outcome(db: Database, notice: Notice, outcome: dict[str, Any], *, credential_type: str | None) -> None:
    for _ in range(3):
        async with db.tenant_scope(tenant_id=notice.tenant_id) as session:
            task = await get_task(session, tenant_id=notice.tenant_id, task_id=notice.task_id)
            entries = list(task.notifications)
            entries[notice.index] = {**entries[notice.index], **outcome}
            task.notifications = entries
            if credential_type is not None:
                # The API unsealed the tenant's SMTP credential for the run's approval node.
                await credential_audit.record_uses(
                    session,
                    [
                        credential_audit.Use(
                            tenant_id=task.tenant_id,
                            flow_run_id=task.flow_run_id,
                            credential=task.email_credential or "",
                            credential_type=credential_type,
                            node_id=task.node_id,
                            used_at=utcnow(),
                        )
                    ],
                )
            try:
                await session.commit()
                return
            except StaleDataError:
                continue
    log.warning("could not note the e-mail outcome of human task %s", notice.task_id)


async def _recipients(session: AsyncSession, *, tenant_id: str, who: list[str]) -> list[str]:
    """E-mail addresses of ``who``: e-mails as given, roles expanded to their members."""
    addresses: list[str] = []
    members = None
    for entry in who:
        if entry.startswith("role:"):
            members = members if members is not None else await list_members(session, tenant_id=tenant_id)
            addresses += [m.email for m in members if getattr(m.role, "value", m.role) == entry[5:]]
        elif "@" in entry:
            addresses.append(entry)
    return sorted(set(addresses))
