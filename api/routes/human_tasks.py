"""Human tasks: the inbox, decisions, decision-page links, and the worker's internal endpoint.

The router's lifespan runs the human-task timer (:mod:`api.services.human_task_timer`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from api.auth.deps import AuditCtx, DatabaseDep, Public, Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.auth.secrets import signing_key
from api.errors import Forbidden, NotFound
from api.prefect import PrefectDep, prefect_of
from api.schemas import Page
from api.services import audit
from api.services import human_tasks as service
from api.services.audit import AuditContext
from api.services.human_task_timer import HumanTaskTimer


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state.gorax
    timer = HumanTaskTimer(
        state.db, prefect_of(app), link_key=signing_key(state.config), api_url=state.settings.effective_api_url
    )
    app.state.human_task_timer = timer
    await timer.start()
    try:
        yield
    finally:
        await timer.stop()


router = APIRouter(tags=["human tasks"], lifespan=_lifespan)


def wake_timer(request: Request) -> None:
    """Tell this app's timer that a task's due time changed."""
    timer = getattr(request.app.state, "human_task_timer", None)
    if timer is not None:
        timer.wake()


class HumanTaskOption(BaseModel):
    label: str
    value: str


class HumanTaskPublic(BaseModel):
    """A human task as assignees see it."""

    id: str
    status: Literal["open", "decided", "expired", "cancelled"]
    title: str
    description: str | None
    workflow_id: str | None
    workflow_name: str | None
    execution_id: str
    node_id: str
    node_name: str
    assignees: list[str] = Field(description="Who may decide (escalation steps may add to them).")
    viewers: list[str] = Field(description="Who may see the task: the people escalation steps notified.")
    options: list[HumanTaskOption]
    data: dict[str, Any] = Field(description="The data the step showed (secrets masked).")
    decision: str | None
    comment: str | None
    decided_by: str | None
    decided_at: datetime | None
    arguments: dict[str, Any] | None = Field(
        default=None, description="An agent's gated tool call: the arguments the reviewer approved it with."
    )
    created_at: datetime
    expires_at: datetime | None
    escalation: list[dict[str, Any]]
    escalation_done: int
    notifications: list[dict[str, Any]]


class HumanTaskDecide(BaseModel):
    value: str = Field(min_length=1, max_length=100, description="The chosen option's value.")
    comment: str | None = Field(default=None, max_length=5000, description="Why (optional).")
    arguments: dict[str, Any] | None = Field(
        default=None,
        description="An agent's gated tool call only: the arguments to run it with instead of the model's "
        "(validated against the tool's schema; with the 'approved' option).",
    )


class EscalationStep(BaseModel):
    after_seconds: float = Field(ge=0)
    notify: list[str] | None = None
    assign: list[str] | None = None
    decide: str | None = None


class HumanTaskCreate(BaseModel):
    """What a run's human.approval node records (internal)."""

    tenant_id: str = Field(max_length=36)
    flow_run_id: str = Field(max_length=36)
    node_id: str = Field(max_length=100)
    node_key: str = Field(max_length=200)
    node_name: str | None = Field(default=None, max_length=200)
    workflow_id: str | None = Field(default=None, max_length=100)
    workflow_name: str | None = Field(default=None, max_length=200)
    title: str = Field(max_length=5000)
    description: str | None = Field(default=None, max_length=20000)
    assignees: list[str] = Field(min_length=1)
    options: list[HumanTaskOption] = Field(min_length=1)
    timeout_seconds: float | None = Field(default=None, ge=0)
    escalation: list[EscalationStep] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=lambda: ["inbox"])
    email_credential: str | None = Field(default=None, max_length=100)
    snapshot: dict[str, Any] = Field(default_factory=dict)


def _view(task: Any) -> HumanTaskPublic:
    return HumanTaskPublic.model_validate(service.public(task))


@router.get("/human-tasks", response_model=Page[HumanTaskPublic])
async def list_human_tasks(
    session: TenantSession,
    status: Literal["open", "decided", "expired", "cancelled"] | None = Query(default=None),
    workflow_id: str | None = Query(default=None, max_length=100),
    limit: int = Query(default=50, ge=1, le=200),
    principal: Principal = Requires(Permission.HUMAN_TASK_READ),
) -> Page[HumanTaskPublic]:
    """My tasks (every task of the tenant for admins), newest first."""
    tasks = await service.list_tasks(
        session,
        tenant_id=principal.required_tenant_id(),
        principal=principal,
        status=status,
        workflow_id=workflow_id,
        limit=limit,
    )
    return Page(items=[_view(task) for task in tasks], total=len(tasks))


@router.get("/human-tasks/{task_id}", response_model=HumanTaskPublic)
async def get_human_task(
    task_id: str,
    session: TenantSession,
    context: AuditCtx,
    principal: Principal = Requires(Permission.HUMAN_TASK_READ),
) -> HumanTaskPublic:
    """One task with the data it shows (assignees and admins; every view is audited)."""
    task = await service.get_task(session, tenant_id=principal.required_tenant_id(), task_id=task_id)
    if not service.can_view(task, principal):
        raise Forbidden("only assignees and admins may open this task", details={"human_task_id": task_id})
    await audit.record(
        session,
        tenant_id=principal.required_tenant_id(),
        action="human_task.view",
        context=context,
        resource_type="human_task",
        resource_id=task.id,
        details={"title": task.title, "data": task.snapshot, "status": task.status},
    )
    await session.commit()
    return _view(task)


@router.post("/human-tasks/{task_id}/decide", response_model=HumanTaskPublic)
async def decide_human_task(
    task_id: str,
    body: HumanTaskDecide,
    session: TenantSession,
    context: AuditCtx,
    db: DatabaseDep,
    prefect: PrefectDep,
    request: Request,
    principal: Principal = Requires(Permission.HUMAN_TASK_DECIDE),
) -> HumanTaskPublic:
    """Decide once (403 for non-assignees, 409 when already decided); the run then resumes."""
    task = await service.decide(
        session,
        db=db,
        context=context,
        tenant_id=principal.required_tenant_id(),
        task_id=task_id,
        principal=principal,
        value=body.value,
        comment=body.comment,
        arguments=body.arguments,
    )
    await session.commit()
    if not await service.hand_over(db, prefect, tenant_id=principal.required_tenant_id(), task_id=task.id):
        wake_timer(request)  # the run was not paused yet: the timer offers the decision again
    return _view(task)


@router.get(
    "/human-tasks/{task_id}/open",
    response_class=RedirectResponse,
    status_code=302,
    responses={302: {"description": "To the decision page"}},
)
async def open_human_task_link(
    task_id: str,
    state: StateDep,
    expires: int = Query(ge=0),
    signature: str = Query(pattern="^[0-9a-f]{64}$"),
    _: None = Public(),
) -> RedirectResponse:
    """Follow an e-mailed link: a genuine, unexpired link leads to the decision page."""
    if not service.verify_link(signing_key(state.config), task_id, expires, signature):
        raise NotFound("this link is invalid or has expired", details={"human_task_id": task_id})
    return RedirectResponse(f"/inbox?task={task_id}", status_code=302)


# -- internal: the worker's calls -----------------------------------------------------------------
@router.post("/internal/human-tasks", response_model=HumanTaskPublic)
async def record_human_task(
    body: HumanTaskCreate,
    db: DatabaseDep,
    state: StateDep,
    request: Request,
    principal: Principal = Requires(Permission.INTERNAL),
) -> HumanTaskPublic:
    """Record the task of a suspended run's approval node (idempotent) and notify assignees."""
    notices = []
    async with db.tenant_scope(tenant_id=body.tenant_id) as session:
        task, created = await service.create_task(
            session, tenant_id=body.tenant_id, request=body.model_dump(mode="json")
        )
        if created:
            notice = service.notify(task, who=task.assignees, reason="assigned")
            notices = [notice] if notice is not None else []
            await audit.record(
                session,
                tenant_id=body.tenant_id,
                action="human_task.create",
                context=AuditContext(actor_type="worker", actor_id=principal.id),
                resource_type="human_task",
                resource_id=task.id,
                details={"execution_id": task.flow_run_id, "node_id": task.node_id},
            )
        await session.commit()
    if created:
        wake_timer(request)
        await service.send_notices(
            db, notices, link_key=signing_key(state.config), api_url=state.settings.effective_api_url
        )
    return _view(task)
