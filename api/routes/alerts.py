"""Alert rules, their history, "send test alert", a workflow's error workflow, and the internal
endpoint Prefect's alert automations post to (:mod:`api.services.alerts`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth.deps import AuditCtx, DatabaseDep, Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import Conflict
from api.prefect import PrefectDep
from api.schemas import Page
from api.services import alerts as service
from api.services.workflows import get_workflow

router = APIRouter(tags=["alerts"])
RuleId = Path(max_length=64, description="The alert rule's id.")
WorkflowId = Path(max_length=64, description="The workflow's id.")
_STRICT = ConfigDict(extra="forbid")


class SlackChannel(BaseModel):
    model_config = _STRICT
    type: Literal["slack"]
    credential: str = Field(min_length=1, max_length=200, description="Name of a Slack credential (bot token).")
    channel: str = Field(min_length=1, max_length=200, description="The Slack channel to post in, e.g. #ops.")


class EmailChannel(BaseModel):
    model_config = _STRICT
    type: Literal["email"]
    credential: str = Field(min_length=1, max_length=200, description="Name of an SMTP credential.")
    to: list[str] = Field(min_length=1, max_length=20, description="Addresses the alert is sent to.")

    @model_validator(mode="after")
    def _addresses(self) -> EmailChannel:
        for i, address in enumerate(self.to):
            if "@" not in address or len(address) > 254:
                raise ValueError(f"to[{i}] is not an e-mail address: {address[:80]!r}")
        return self


class WebhookChannel(BaseModel):
    model_config = _STRICT
    type: Literal["webhook"]
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://", description="Posted to (outbound guard).")


class AlertRuleBody(BaseModel):
    """An alert rule: when (kind and its numbers, scope) and where (channel)."""

    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["failure", "long_running", "failure_burst", "webhook_failures"]
    threshold: int | None = Field(
        default=None, ge=1, le=1000, description="failure_burst / webhook_failures: N failures ..."
    )
    window_minutes: int | None = Field(default=None, ge=1, le=1440, description="... within M minutes.")
    seconds: int | None = Field(default=None, ge=10, le=7 * 86400, description="long_running: N seconds.")
    workflow_id: str | None = Field(default=None, max_length=64, description="One workflow; none: every workflow.")
    channel: SlackChannel | EmailChannel | WebhookChannel = Field(discriminator="type")
    cooldown_minutes: int = Field(default=15, ge=0, le=1440, description="No second alert of the rule within it.")
    enabled: bool = True


class AlertRulePublic(BaseModel):
    id: str
    name: str
    kind: str
    threshold: int | None
    window_minutes: int | None
    seconds: int | None
    workflow_id: str | None
    channel: dict[str, Any]
    cooldown_minutes: int
    enabled: bool
    last_sent_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AlertEventPublic(BaseModel):
    id: str
    rule_id: str | None
    at: datetime
    status: str = Field(description="sent, suppressed (cool-down) or failed (see error).")
    subject: str
    runs: list[dict[str, Any]]
    error: str | None
    test: bool


class ErrorWorkflowBody(BaseModel):
    model_config = _STRICT
    on_failure_workflow_id: str | None = Field(max_length=64, description="Run with the failed run's context.")


class ErrorWorkflowPublic(BaseModel):
    workflow_id: str
    on_failure_workflow_id: str | None


class FireResult(BaseModel):
    outcome: str


def _callback(state: Any) -> service.Callback:
    if not state.worker_token:
        raise Conflict("alerts need the worker token (GORAX_WORKER_TOKEN): Prefect posts alerts with it")
    return service.Callback(f"{state.settings.effective_api_url}/api/v1/internal/alerts/fire", state.worker_token)


def _event(event: Any) -> AlertEventPublic:
    return AlertEventPublic.model_validate(event, from_attributes=True)


@router.get("/alert-rules", response_model=Page[AlertRulePublic])
async def list_rules(
    session: TenantSession, principal: Principal = Requires(Permission.ALERT_MANAGE)
) -> Page[AlertRulePublic]:
    """The tenant's alert rules."""
    rules = await service.list_rules(session, tenant_id=principal.tenant_id or "")
    return Page(items=[AlertRulePublic(**service.rule_public(r)) for r in rules], total=len(rules))


@router.post("/alert-rules", response_model=AlertRulePublic, status_code=status.HTTP_201_CREATED)
async def create_rule(
    body: AlertRuleBody,
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    state: StateDep,
    principal: Principal = Requires(Permission.ALERT_MANAGE),
) -> AlertRulePublic:
    """Add an alert rule (and its Prefect automation)."""
    rule = await service.create_rule(
        session, prefect, _callback(state), tenant_id=principal.tenant_id or "", body=body.model_dump(), context=context
    )
    return AlertRulePublic(**service.rule_public(rule))


@router.get("/alert-rules/{rule_id}", response_model=AlertRulePublic)
async def get_rule(
    session: TenantSession, rule_id: str = RuleId, principal: Principal = Requires(Permission.ALERT_MANAGE)
) -> AlertRulePublic:
    """One alert rule."""
    rule = await service.get_rule(session, tenant_id=principal.tenant_id or "", rule_id=rule_id)
    return AlertRulePublic(**service.rule_public(rule))


@router.put("/alert-rules/{rule_id}", response_model=AlertRulePublic)
async def update_rule(
    body: AlertRuleBody,
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    state: StateDep,
    rule_id: str = RuleId,
    principal: Principal = Requires(Permission.ALERT_MANAGE),
) -> AlertRulePublic:
    """Replace an alert rule (its automation follows)."""
    rule = await service.update_rule(
        session,
        prefect,
        _callback(state),
        tenant_id=principal.tenant_id or "",
        rule_id=rule_id,
        body=body.model_dump(),
        context=context,
    )
    return AlertRulePublic(**service.rule_public(rule))


@router.delete("/alert-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    rule_id: str = RuleId,
    principal: Principal = Requires(Permission.ALERT_MANAGE),
) -> Response:
    """Delete an alert rule, its automation and its history."""
    await service.delete_rule(session, prefect, tenant_id=principal.tenant_id or "", rule_id=rule_id, context=context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/alert-rules/{rule_id}/test", response_model=AlertEventPublic)
async def send_test_alert(
    session: TenantSession,
    db: DatabaseDep,
    state: StateDep,
    rule_id: str = RuleId,
    principal: Principal = Requires(Permission.ALERT_MANAGE),
) -> AlertEventPublic:
    """Send a test alert through the rule's channel now; the answer says whether it was sent."""
    rule = await service.get_rule(session, tenant_id=principal.tenant_id or "", rule_id=rule_id)
    event = await service.send_test(db, rule, runtime=state.settings.runtime)
    return _event(event)


@router.get("/alerts", response_model=Page[AlertEventPublic])
async def alert_history(
    session: TenantSession,
    rule_id: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=100, ge=1, le=500),
    principal: Principal = Requires(Permission.ALERT_MANAGE),
) -> Page[AlertEventPublic]:
    """The alerts the tenant's rules raised, newest first (sent, suppressed, failed)."""
    events = await service.history(session, tenant_id=principal.tenant_id or "", rule_id=rule_id, limit=limit)
    return Page(items=[_event(e) for e in events], total=len(events))


@router.get("/workflows/{workflow_id}/error-workflow", response_model=ErrorWorkflowPublic)
async def get_error_workflow(
    session: TenantSession, workflow_id: str = WorkflowId, principal: Principal = Requires(Permission.WORKFLOW_READ)
) -> ErrorWorkflowPublic:
    """The workflow run when one of this workflow's runs fails."""
    workflow = await get_workflow(session, tenant_id=principal.tenant_id or "", workflow_id=workflow_id)
    return ErrorWorkflowPublic(workflow_id=workflow.id, on_failure_workflow_id=workflow.on_failure_workflow_id)


@router.put("/workflows/{workflow_id}/error-workflow", response_model=ErrorWorkflowPublic)
async def set_error_workflow(
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    state: StateDep,
    body: ErrorWorkflowBody = Body(),
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.WORKFLOW_EDIT),
) -> ErrorWorkflowPublic:
    """Set (or clear with null) the error workflow: same tenant, and no cycle of error workflows."""
    workflow = await service.set_error_workflow(
        session,
        prefect,
        _callback(state),
        tenant_id=principal.tenant_id or "",
        workflow_id=workflow_id,
        on_failure_workflow_id=body.on_failure_workflow_id,
        context=context,
    )
    return ErrorWorkflowPublic(workflow_id=workflow.id, on_failure_workflow_id=workflow.on_failure_workflow_id)


@router.post("/internal/alerts/fire", response_model=FireResult)
async def fire(
    db: DatabaseDep,
    prefect: PrefectDep,
    state: StateDep,
    payload: dict[str, Any] = Body(),
    principal: Principal = Requires(Permission.INTERNAL),
) -> FireResult:
    """Where Prefect's alert and error-workflow automations post (the worker principal only)."""
    outcome = await service.fire(db, prefect, payload, runtime=state.settings.runtime)
    return FireResult(outcome=outcome)
