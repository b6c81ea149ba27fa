"""Human tasks: recording them for suspended runs, the inbox, decisions, escalation.

A run's ``human.approval`` node records its task through the internal endpoint, then the run
suspends in Prefect. A decision is stored first and then handed to Prefect by resuming the
flow run with the decision as its typed input; a decision whose run was not paused yet (the
run suspends a moment after recording the task) is resumed by a later :func:`sweep`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.permissions import Role
from api.auth.principal import Principal
from api.db.engine import Database
from api.errors import Conflict, Forbidden, NotFound, ValidationFailed
from api.models.human_tasks import HumanTask
from api.services import notifications
from api.services.identity import list_members
from api.db.base import utcnow

log = logging.getLogger("gorax.human_tasks")

SYSTEM_TIMEOUT = "system:timeout"
#: Run states after which nobody can still decide for the run.
_TERMINAL_RUN_STATES = frozenset({"CANCELLED", "CANCELLING", "FAILED", "CRASHED", "COMPLETED"})


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
        status="open",
        created_at=now,
        expires_at=now + timedelta(seconds=float(timeout)) if timeout else None,
        notifications=[],
    )
    session.add(task)
    await session.flush()
    return task, True


# -- reading ----------------------------------------------------------------------------------
def is_assignee(task: HumanTask, principal: Principal) -> bool:
    """Whether ``principal`` is named by the task's assignees (e-mail, user id or role)."""
    for assignee in task.assignees:
        if assignee.startswith("role:"):
            if principal.role is not None and principal.role.value == assignee[5:]:
                return True
        elif principal.kind == "user" and assignee.lower() in {
            (principal.email or "").lower(), principal.id.lower()
        }:
            return True
    return False


def can_view(task: HumanTask, principal: Principal) -> bool:
    return principal.role is Role.ADMIN or is_assignee(task, principal)


async def list_tasks(
    session: AsyncSession, *, tenant_id: str, principal: Principal, status: str | None,
    workflow_id: str | None, limit: int,
) -> list[HumanTask]:
    """The principal's tasks (every task of the tenant for admins), newest first."""
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
        await session.execute(
            select(HumanTask).where(HumanTask.tenant_id == tenant_id, HumanTask.id == task_id)
        )
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
        "options": task.options,
        "data": task.snapshot,
        "decision": task.decision,
        "comment": task.comment,
        "decided_by": task.decided_by,
        "decided_at": task.decided_at,
        "created_at": task.created_at,
        "expires_at": task.expires_at,
        "escalation": task.escalation,
        "escalation_done": task.escalation_done,
        "notifications": task.notifications,
    }


# -- deciding ---------------------------------------------------------------------------------
async def decide(
    session: AsyncSession, *, tenant_id: str, task_id: str, principal: Principal, value: str,
    comment: str | None,
) -> HumanTask:
    """Record a person's decision (403 if not an assignee, 409 if already decided)."""
    task = await get_task(session, tenant_id=tenant_id, task_id=task_id)
    if not is_assignee(task, principal):
        raise Forbidden(
            "only an assignee of this task may decide it",
            details={"human_task_id": task_id, "assignees": task.assignees},
        )
    _check_open(task)
    values = [option["value"] for option in task.options]
    if value not in values:
        raise ValidationFailed(
            f"value {value!r} is not an option of this task ({', '.join(values)})",
            details={"errors": [{"field": "value", "path": "value", "code": "not_an_option",
                                 "message": f"choose one of {', '.join(values)}"}]},
        )
    _record_decision(task, value=value, comment=comment, decided_by=principal.email or principal.actor)
    await session.flush()
    return task


def _check_open(task: HumanTask) -> None:
    if task.status != "open":
        raise Conflict(
            f"human task {task.id} is already {task.status}",
            details={"human_task_id": task.id, "status": task.status, "decision": task.decision,
                     "decided_by": task.decided_by},
        )


def _record_decision(task: HumanTask, *, value: str | None, comment: str | None, decided_by: str,
                     status: str = "decided") -> None:
    task.status = status
    task.decision = value
    task.comment = comment
    task.decided_by = decided_by
    task.decided_at = utcnow()


async def resume_run(task: HumanTask) -> bool:
    """Hand the decision to Prefect; True when the run was resumed (or no longer waits)."""
    from prefect.exceptions import ObjectNotFound
    from prefect.flow_runs import aresume_flow_run
    from prefect.client.orchestration import get_client

    run_input = {
        "value": task.decision,
        "comment": task.comment,
        "decided_by": task.decided_by,
        "decided_at": task.decided_at.isoformat() if task.decided_at else None,
        "expired": task.status == "expired",
    }
    try:
        async with get_client() as client:
            flow_run = await client.read_flow_run(task.flow_run_id)
    except ObjectNotFound:
        return True
    state = flow_run.state
    if state is None:
        return False
    if state.is_paused():
        try:
            await aresume_flow_run(flow_run.id, run_input=run_input)
        except Exception as exc:  # the sweep tries again
            log.warning("resuming run %s for task %s failed: %s", flow_run.id, task.id, exc)
            return False
        return True
    # Still running towards its suspend: a later sweep resumes it. Finished: nothing to do.
    return state.type.value in _TERMINAL_RUN_STATES


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


# -- notifications and the maintenance sweep ------------------------------------------------
async def _recipients(session: AsyncSession, *, tenant_id: str, who: list[str]) -> list[str]:
    """E-mail addresses of assignees: e-mails as given, roles expanded to their members."""
    addresses: list[str] = []
    members = None
    for entry in who:
        if entry.startswith("role:"):
            members = members if members is not None else await list_members(session, tenant_id=tenant_id)
            addresses += [m.email for m in members if getattr(m.role, "value", m.role) == entry[5:]]
        elif "@" in entry:
            addresses.append(entry)
    return sorted(set(addresses))


async def notify(session: AsyncSession, task: HumanTask, *, who: list[str], reason: str,
                 link_key: bytes, api_url: str) -> None:
    """Tell ``who`` about the task: always in the inbox; by e-mail when the task asks for it."""
    entry: dict[str, Any] = {"at": utcnow().isoformat(), "reason": reason, "to": list(who),
                             "channels": ["inbox"]}
    if "email" in task.channels and task.email_credential:
        addresses = await _recipients(session, tenant_id=task.tenant_id, who=who)
        expires, signature = sign_link(link_key, task.id)
        link = f"{api_url}/api/v1/human-tasks/{task.id}/open?expires={expires}&signature={signature}"
        try:
            await notifications.send_email(
                tenant_id=task.tenant_id, credential=task.email_credential, to=addresses,
                subject=f"[Gorax] {'Reminder: ' if reason == 'escalation' else ''}{task.title}",
                text=(f"{task.title}\n\n{task.description or ''}\n\nWorkflow: {task.workflow_name}\n"
                      f"Options: {', '.join(o['label'] for o in task.options)}\n\n"
                      f"Decide here (sign-in required): {link}\n"),
            )
            entry["channels"].append("email")
            entry["emailed"] = addresses
        except Exception as exc:
            entry["email_error"] = str(exc)[:300]
            log.warning("e-mail for human task %s failed: %s", task.id, exc)
    task.notifications = [*task.notifications, entry]


async def sweep(db: Database, *, link_key: bytes, api_url: str, now: datetime | None = None) -> dict[str, int]:
    """Escalate, auto-decide, expire, cancel and resume what is due; counts of each."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    now = now or utcnow()
    counts = {"escalated": 0, "auto_decided": 0, "expired": 0, "cancelled": 0, "resumed": 0}
    async with db.system_scope() as session:
        tasks = (
            await session.execute(
                select(HumanTask).where(
                    (HumanTask.status == "open") | (HumanTask.resumed_at.is_(None))
                )
            )
        ).scalars().all()
        async with get_client() as client:
            for task in tasks:
                if task.status == "open":
                    try:
                        run = await client.read_flow_run(task.flow_run_id)
                        run_state = run.state.type.value if run.state else None
                    except ObjectNotFound:
                        run_state = "CANCELLED"
                    if run_state in _TERMINAL_RUN_STATES:
                        task.status = "cancelled"
                        task.resumed_at = now
                        counts["cancelled"] += 1
                        continue
                    age = (now - task.created_at).total_seconds()
                    while task.escalation_done < len(task.escalation):
                        step = task.escalation[task.escalation_done]
                        if age < float(step["after_seconds"]):
                            break
                        task.escalation_done += 1
                        if step.get("notify"):
                            await notify(session, task, who=step["notify"], reason="escalation",
                                         link_key=link_key, api_url=api_url)
                            counts["escalated"] += 1
                        if step.get("decide"):
                            _record_decision(task, value=step["decide"], comment="decided automatically: nobody decided in time",
                                             decided_by=SYSTEM_TIMEOUT)
                            counts["auto_decided"] += 1
                            break
                    if task.status == "open" and task.expires_at and now >= task.expires_at:
                        _record_decision(task, value=None, comment="expired", decided_by=SYSTEM_TIMEOUT,
                                         status="expired")
                        counts["expired"] += 1
                if task.status in {"decided", "expired"} and task.resumed_at is None:
                    if await resume_run(task):
                        task.resumed_at = utcnow()
                        counts["resumed"] += 1
                elif task.status == "cancelled" and task.resumed_at is None:
                    task.resumed_at = now
        await session.commit()
    return counts


async def cancel_for_run(session: AsyncSession, *, tenant_id: str, flow_run_id: str) -> int:
    """Cancel the open tasks of a cancelled run; how many."""
    tasks = (
        await session.execute(
            select(HumanTask).where(HumanTask.tenant_id == tenant_id,
                                    HumanTask.flow_run_id == flow_run_id,
                                    HumanTask.status == "open")
        )
    ).scalars().all()
    for task in tasks:
        task.status = "cancelled"
        task.resumed_at = utcnow()
    return len(tasks)
